//! The one error type of the data layer.

use std::fmt::Display;
use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while reading, loading or sampling data.
///
/// Every variant that comes from a file carries that file's name (or path, or a description such
/// as "embedded MNIST sample: train-images-idx3-ubyte.gz") so that the message alone tells a
/// student which file to look at and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// A folder holds no kind of data that `--data` reads.
    #[error(
        "{}: no dataset recognised: expected MNIST-style IDX files (train-images-idx3-ubyte[.gz] …), \
         CIFAR-10 binary batches (data_batch_1.bin … data_batch_5.bin, test_batch.bin, or the \
         cifar-10-batches-bin folder holding them), or an image folder: train/<class>/<pictures> and \
         test/<class>/<pictures>, or one folder of pictures per class (PNG, JPEG, BMP or GIF)",
        dir.display()
    )]
    UnknownDataKind {
        /// The folder.
        dir: PathBuf,
    },
    /// A picture file that cannot be decoded.
    #[error("{name}: cannot read the picture: {reason}")]
    Picture {
        /// The file.
        name: String,
        /// What the decoder said.
        reason: String,
    },
    /// A class folder of an image folder holds no pictures.
    #[error(
        "{}: the class folder holds no pictures{}: every class needs at least one PNG, JPEG, BMP or GIF file",
        dir.display(),
        match .skipped {
            0 => String::new(),
            1 => " (only 1 file, not a picture)".to_owned(),
            n => format!(" (only {} files, none a picture)", sep(n)),
        }
    )]
    EmptyClass {
        /// The class folder.
        dir: PathBuf,
        /// Files in it that are not pictures.
        skipped: usize,
    },
    /// An image folder has a single class folder: a classifier needs two classes at least.
    #[error(
        "{}: only one class folder ({class}): a classifier needs at least two, one folder of pictures per class",
        dir.display()
    )]
    SingleClass {
        /// The folder holding the class folders.
        dir: PathBuf,
        /// The one class.
        class: String,
    },
    /// An image folder has no class folders.
    #[error(
        "{}: no class folders: put the pictures in one folder per class (train/<class>/… and test/<class>/…, \
         or <class>/… for a held-out test share)",
        dir.display()
    )]
    NoClassFolders {
        /// The folder that should hold them.
        dir: PathBuf,
    },
    /// An image folder has more class folders than labels can number.
    #[error("{}: {} class folders, but at most {max} classes are read", dir.display(), sep(.count))]
    TooManyClasses {
        /// The folder holding the class folders.
        dir: PathBuf,
        /// How many class folders it holds.
        count: usize,
        /// The most classes read (256: labels are bytes).
        max: usize,
    },
    /// The training and test folders of an image folder hold different class folders.
    #[error("{0}")]
    ClassMismatch(Box<ClassMismatch>),
    /// An image folder without a test folder in which no class has two pictures, so none can be
    /// held out for testing.
    #[error(
        "{}: every class folder holds a single picture, so none can be held out for testing: add pictures, or a \
         test/ folder beside train/",
        dir.display()
    )]
    NothingToHoldOut {
        /// The folder holding the class folders.
        dir: PathBuf,
    },
    /// The side pictures are resized to is outside what the networks are meant for.
    #[error("image size {size} is not allowed: pictures are resized to a square side from {min} to {max} pixels")]
    ImageSize {
        /// The side asked for.
        size: usize,
        /// The smallest side.
        min: usize,
        /// The largest side.
        max: usize,
    },
    /// The pictures of an image folder, resized, would not fit in memory.
    #[error(
        "{}: {} pictures of {} bytes each after resizing would take {} MB, more than the {} MB allowed: \
         use a smaller --image-size or --grayscale",
        dir.display(),
        sep(.pictures),
        sep(.bytes_each),
        sep(&((*.pictures as u64 * *.bytes_each as u64) >> 20)),
        sep(&(*.limit >> 20))
    )]
    TooManyPictures {
        /// The image folder.
        dir: PathBuf,
        /// How many pictures it holds.
        pictures: usize,
        /// Bytes per resized picture.
        bytes_each: usize,
        /// The most bytes the pictures may take.
        limit: u64,
    },
    /// The training and test images of a folder differ in size.
    #[error(
        "{test_name}: the test images are {} but the training images ({train_name}) are {}: both splits must have one size",
        shape(*.test),
        shape(*.train)
    )]
    SplitSizes {
        /// The training images' file.
        train_name: String,
        /// The test images' file.
        test_name: String,
        /// Training image shape, channels × rows × cols.
        train: (usize, usize, usize),
        /// Test image shape.
        test: (usize, usize, usize),
    },
    /// The dataset folder does not exist.
    #[error("dataset folder {} does not exist", dir.display())]
    FolderMissing {
        /// The folder that was asked for.
        dir: PathBuf,
    },

    /// The path given as a dataset folder exists but is not a folder.
    #[error("{} is not a folder (expected a folder holding the four MNIST IDX files)", path.display())]
    NotAFolder {
        /// The path that was asked for.
        path: PathBuf,
    },

    /// One of the four IDX files is not in the dataset folder under any accepted name.
    #[error(
        "{file} is missing from {}: tried {}",
        dir.display(),
        tried.join(", ")
    )]
    MissingFile {
        /// The canonical name of the missing file, e.g. `t10k-labels-idx1-ubyte`.
        file: String,
        /// The folder that was searched.
        dir: PathBuf,
        /// Every file name that was looked for, in the order tried.
        tried: Vec<String>,
    },

    /// A data file is not a regular file (a named pipe, device, directory), is a dangling link
    /// or a symlink loop, or cannot be opened.
    #[error(transparent)]
    File(#[from] crate::fileio::FileError),

    /// A split's files hold no images: nothing to train on or to test.
    #[error("{images_name}: the file holds no images, but the {split} set needs at least one")]
    EmptySplit {
        /// The image file.
        images_name: String,
        /// "training" or "test".
        split: &'static str,
    },

    /// Two spellings of the same file are present (e.g. raw and `.gz`) and their contents
    /// differ, so it is unclear which one is meant.
    #[error(
        "{} and {} are both present and hold different data: remove the one you do not mean",
        first.display(),
        second.display()
    )]
    Ambiguous {
        /// The file tried first (and taken, if the two agreed).
        first: PathBuf,
        /// The other spelling.
        second: PathBuf,
    },

    /// The operating system could not open or read a file.
    #[error("{name}: cannot read the file: {source}")]
    Io {
        /// The file that could not be read.
        name: String,
        /// What the operating system reported.
        source: io::Error,
    },

    /// The file (or, for a gzip file, its decompressed content) has no bytes at all.
    #[error("{name}: the file is empty")]
    Empty {
        /// The empty file.
        name: String,
    },

    /// The gzip stream cannot be decompressed.
    #[error("{name}: the file starts like a gzip file but its compressed data is corrupt or cut short ({source})")]
    CorruptGzip {
        /// The corrupt file.
        name: String,
        /// What the decompressor reported.
        source: io::Error,
    },

    /// The file does not start with the IDX magic number for the kind of file expected.
    #[error("{name}: {}", describe_bad_magic(*.expected, *.found))]
    BadMagic {
        /// The file with the unexpected magic number.
        name: String,
        /// The magic number an image (0x00000803) or label (0x00000801) file must start with.
        expected: u32,
        /// The first four bytes of the file, as a big-endian number.
        found: u32,
    },

    /// The file ends inside the IDX header, before all dimensions are known.
    #[error(
        "{name}: the file ends after {} bytes, inside its {header_len}-byte IDX header",
        sep(.actual)
    )]
    TruncatedHeader {
        /// The short file.
        name: String,
        /// How long the header must be (8 bytes for labels, 16 for images).
        header_len: usize,
        /// How many bytes the file has.
        actual: usize,
    },

    /// The images are not the size the network expects.
    #[error("{name}: images are {rows}×{cols} pixels but {expected_rows}×{expected_cols} are expected")]
    WrongDims {
        /// The file with the unexpected image size.
        name: String,
        /// Rows per image according to the header.
        rows: usize,
        /// Columns per image according to the header.
        cols: usize,
        /// Rows per image the caller expects.
        expected_rows: usize,
        /// Columns per image the caller expects.
        expected_cols: usize,
    },

    /// The file has fewer bytes than its header promises.
    #[error(
        "{name}: the file is cut short: its header promises {} {what} ({} bytes of data) but only {} bytes follow",
        sep(.count),
        sep(.expected_bytes),
        sep(.actual_bytes)
    )]
    Truncated {
        /// The short file.
        name: String,
        /// "images" or "labels".
        what: &'static str,
        /// How many items the header promises.
        count: u64,
        /// How many data bytes that count needs (after the header).
        expected_bytes: u128,
        /// How many data bytes there are.
        actual_bytes: u64,
    },

    /// The file has more bytes than its header accounts for.
    #[error(
        "{name}: {}{} after the {} {what} its header promises",
        if *.at_least { "at least " } else { "" },
        count_of(.extra_bytes, "unexpected byte", "unexpected bytes"),
        sep(.count)
    )]
    TrailingBytes {
        /// The file that is too long.
        name: String,
        /// "images" or "labels".
        what: &'static str,
        /// How many items the header promises.
        count: u64,
        /// How many bytes follow the promised data (a lower bound when `at_least` is set).
        extra_bytes: u64,
        /// The reader stopped counting; there may be even more extra bytes.
        at_least: bool,
    },

    /// An image file and its label file disagree on how many items there are.
    #[error("{labels_name}: {} labels but {} images in {images_name}", sep(.labels), sep(.images))]
    CountMismatch {
        /// The label file.
        labels_name: String,
        /// The image file.
        images_name: String,
        /// Number of labels.
        labels: usize,
        /// Number of images.
        images: usize,
    },

    /// A label is not a valid class number.
    #[error(
        "{name}: the label at position {} (counting from 0) is {label}, but there are only {num_classes} classes (0 to {})",
        sep(.index),
        num_classes.saturating_sub(1)
    )]
    LabelOutOfRange {
        /// The label file.
        name: String,
        /// Position of the bad label (0-based).
        index: usize,
        /// The bad label.
        label: u8,
        /// How many classes there are.
        num_classes: usize,
    },

    /// A `classes.txt` names fewer classes than the labels need (or fewer than two).
    #[error(
        "{}: found {found} class names but the dataset needs at least {expected} (write one name per line, in label order)",
        path.display()
    )]
    ClassesFile {
        /// The `classes.txt` file.
        path: PathBuf,
        /// Number of non-empty lines found.
        found: usize,
        /// Number of names needed: the largest label + 1, and at least 2.
        expected: usize,
    },

    /// A class-name choice (e.g. from `--classes`) is not one of the known sets.
    #[error("unknown class names {value:?}: use \"digits\" (0 to 9) or \"fashion\" (Fashion-MNIST)")]
    UnknownClassNames {
        /// What was asked for.
        value: String,
    },

    /// A sampling-mode choice is not one of the known modes.
    #[error(
        "unknown sampling mode {value:?}: use \"shuffled\" (each image once per epoch) or \"replacement\" (uniform random draws)"
    )]
    UnknownSamplingMode {
        /// What was asked for.
        value: String,
    },

    /// A batch asked for an image the dataset does not have.
    #[error(
        "batch index {} is out of range for a dataset of {} images",
        sep(.index),
        sep(.len)
    )]
    IndexOutOfRange {
        /// The bad index.
        index: usize,
        /// Number of images in the dataset.
        len: usize,
    },

    /// A CIFAR-10 batch whose size is not a whole number of 3,073-byte records.
    #[error(
        "{name}: {} bytes is not a whole number of {}-byte CIFAR-10 records (1 label byte + {} pixel bytes): {}; \
         the file is cut short or not a CIFAR-10 binary batch",
        sep(.bytes),
        sep(&super::cifar::CIFAR_RECORD_BYTES),
        sep(&super::cifar::CIFAR_IMAGE_BYTES),
        describe_remainder(*.bytes, *.records)
    )]
    CifarRecordSize {
        /// The batch file.
        name: String,
        /// Its size in bytes.
        bytes: u64,
        /// Whole records in it.
        records: u64,
    },

    /// A CIFAR-10 batch far larger than any real one.
    #[error(
        "{name}: {} bytes is too large for a CIFAR-10 batch (a real one has 30,730,000; at most {} are read)",
        sep(.bytes),
        sep(.limit)
    )]
    CifarTooLarge {
        /// The batch file.
        name: String,
        /// Its size in bytes.
        bytes: u64,
        /// The most a batch may have.
        limit: u64,
    },

    /// A CIFAR-10 folder with training batches but no test batch, or the other way round.
    #[error("{}: there is {found} but no {missing}: a CIFAR-10 folder needs both the training and the test batches", dir.display())]
    CifarSplitMissing {
        /// The folder.
        dir: PathBuf,
        /// The batches that are there.
        found: String,
        /// What is missing.
        missing: String,
        /// The split that is missing: "training" or "test".
        split: &'static str,
    },

    /// A CIFAR-10 label with no class name, in a folder without `batches.meta.txt`.
    #[error(
        "{name}: record {} (counting from 0) has label {label}, but CIFAR-10 has only {num_classes} classes (0 to {}); \
         for more classes, name them in {}, one per line",
        sep(.record),
        num_classes.saturating_sub(1),
        meta.display()
    )]
    CifarLabel {
        /// The batch file.
        name: String,
        /// The record (0-based).
        record: usize,
        /// Its label.
        label: u8,
        /// Classes there are.
        num_classes: usize,
        /// Where the names would go (`batches.meta.txt` in the folder).
        meta: PathBuf,
    },

    /// A `batches.meta.txt` naming fewer classes than the labels need (or fewer than two, or
    /// more than a label byte can tell apart).
    #[error("{}: {}", path.display(), describe_cifar_names(*.found, *.needed, .largest.as_ref()))]
    CifarClassNames {
        /// The `batches.meta.txt` file.
        path: PathBuf,
        /// Names (non-empty lines) found.
        found: usize,
        /// Names the labels need: the largest label + 1, and at least 2.
        needed: usize,
        /// Where the largest label is: the batch file, the record (0-based) and the label.
        largest: Option<(String, usize, u8)>,
    },

    /// A `Dataset` whose fields do not fit together (image bytes, labels and size disagree).
    #[error("inconsistent dataset: {reason}")]
    InconsistentDataset {
        /// What does not fit.
        reason: String,
    },

    /// A saved sampler state cannot be resumed.
    #[error("invalid saved sampler state: {reason}")]
    InvalidSamplerState {
        /// What is wrong with it.
        reason: String,
    },
}

/// Formats an integer with thousands separators (`9998` → `9,998`), so that counts in messages
/// read like the numbers in the MNIST documentation.
pub(crate) fn sep(n: &impl Display) -> String {
    let digits = n.to_string();
    let (sign, digits) = match digits.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", digits.as_str()),
    };
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    out.push_str(sign);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// "1 byte", "2,048 bytes": a count with its noun in the right number.
fn count_of(n: &u64, one: &str, many: &str) -> String {
    if *n == 1 { format!("1 {one}") } else { format!("{} {many}", sep(n)) }
}

/// The class folders that differ between an image folder's training and test folders (boxed in
/// [`DataError::ClassMismatch`]: it is large and rare).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassMismatch {
    /// The training folder.
    pub train: PathBuf,
    /// The test folder.
    pub test: PathBuf,
    /// Classes only in the training folder, sorted.
    pub only_train: Vec<String>,
    /// Classes only in the test folder, sorted.
    pub only_test: Vec<String>,
}

impl Display for ClassMismatch {
    /// "train and test hold different class folders: only in the training folder: cat, dog;
    /// only in the test folder: bird" (a few names each).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let few = |names: &[String]| {
            let mut text = names.iter().take(5).map(String::as_str).collect::<Vec<_>>().join(", ");
            if names.len() > 5 {
                text.push_str(&format!(" and {} more", names.len() - 5));
            }
            text
        };
        let mut parts = Vec::new();
        if !self.only_train.is_empty() {
            parts.push(format!("only in the training folder: {}", few(&self.only_train)));
        }
        if !self.only_test.is_empty() {
            parts.push(format!("only in the test folder: {}", few(&self.only_test)));
        }
        write!(
            f,
            "{} and {} hold different class folders: {}",
            self.train.display(),
            self.test.display(),
            parts.join("; ")
        )
    }
}

/// Explains a wrong magic number in words, recognising the common mix-ups (label file where an
/// image file belongs and the other way round, a gzip or zip archive that was not detected).
fn describe_bad_magic(expected: u32, found: u32) -> String {
    let kind = |magic: u32| match magic {
        super::idx::IMAGES_MAGIC => Some("an IDX image file"),
        super::idx::LABELS_MAGIC => Some("an IDX label file"),
        _ => None,
    };
    let wanted = kind(expected).unwrap_or("an IDX file");
    let hint = match (kind(found), found >> 16) {
        (Some(other), _) => format!("; it looks like {other} instead"),
        (None, 0x504b) => "; it looks like a zip archive, unpack it first".to_owned(),
        (None, 0x0000) if found & 0xff00 == 0x0800 => {
            format!("; it is an IDX file with {} dimensions instead of {}", found & 0xff, expected & 0xff)
        }
        // IDX type codes other than 0x08 (unsigned byte): 0x09 i8, 0x0B i16, 0x0C i32,
        // 0x0D f32, 0x0E f64.
        (None, 0x0000) if matches!((found >> 8) & 0xff, 0x09 | 0x0b..=0x0e) => {
            format!("; it is an IDX file of another data type (code 0x{:02X}), not unsigned bytes", (found >> 8) & 0xff)
        }
        _ => String::new(),
    };
    format!("not {wanted}: it starts with 0x{found:08X} instead of 0x{expected:08X}{hint}")
}

/// What is left over after the whole records of a CIFAR-10 batch.
fn describe_remainder(bytes: u64, records: u64) -> String {
    if records == 0 {
        return "it is shorter than one record".to_owned();
    }
    let over = bytes.saturating_sub(records.saturating_mul(super::cifar::CIFAR_RECORD_BYTES as u64));
    format!("{} left over after {}", count_of(&over, "byte", "bytes"), count_of(&records, "record", "records"))
}

/// What is wrong with the class names of a `batches.meta.txt`.
fn describe_cifar_names(found: usize, needed: usize, largest: Option<&(String, usize, u8)>) -> String {
    if found > 256 {
        return format!(
            "{} class names, but labels are single bytes: at most 256 classes (one name per line, in label order)",
            sep(&found)
        );
    }
    let why = match largest {
        Some((name, record, label)) if usize::from(*label) + 1 == needed => {
            format!(" (label {label} is in record {} of {name})", sep(record))
        }
        _ => String::new(),
    };
    format!(
        "found {found} class names but the labels need at least {needed}{why}: write one name per line, in label order"
    )
}

/// `C×H×W`, or `H×W` for grey images.
fn shape((c, h, w): (usize, usize, usize)) -> String {
    if c == 1 { format!("{h}×{w}") } else { format!("{c}×{h}×{w}") }
}

#[cfg(test)]
mod tests {
    use super::sep;

    #[test]
    fn thousands_separators_group_by_three() {
        assert_eq!(sep(&0), "0");
        assert_eq!(sep(&999), "999");
        assert_eq!(sep(&1000), "1,000");
        assert_eq!(sep(&9998), "9,998");
        assert_eq!(sep(&47_040_000_u64), "47,040,000");
        assert_eq!(sep(&-1234), "-1,234");
    }
}
