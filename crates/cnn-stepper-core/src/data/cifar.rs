//! CIFAR-10 binary folders: `data_batch_1.bin` … `data_batch_5.bin`, `test_batch.bin` and
//! `batches.meta.txt`, as in the "CIFAR-10 binary version" archive (`cifar-10-batches-bin/`).
//!
//! Each `.bin` file is a run of 3,073-byte records: one label byte, then 1,024 red, 1,024 green
//! and 1,024 blue bytes of a 32×32 image, row-major. That is already the C×H×W layout of a
//! [`Dataset`], so the pixels are copied as they are. Each file is read whole (bounded by its
//! size): the full set (180 MB) loads in a fraction of a second.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::dataset::{largest_label, name_lines};
use super::error::sep;
use super::{DataError, Dataset, LoadProgress, Splits};
use crate::fileio;

/// The training batches of a CIFAR-10 folder, in the order they are read.
pub const CIFAR_TRAIN_FILES: [&str; 5] =
    ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"];
/// The test batch of a CIFAR-10 folder.
pub const CIFAR_TEST_FILE: &str = "test_batch.bin";
/// The file that names the classes, one per line, in label order.
pub const CIFAR_META_FILE: &str = "batches.meta.txt";
/// The folder the CIFAR-10 archive unpacks to; a folder holding it is read as the folder itself.
pub const CIFAR_ARCHIVE_FOLDER: &str = "cifar-10-batches-bin";
/// CIFAR-10's class names, for a folder without `batches.meta.txt`.
pub const CIFAR_CLASSES: [&str; 10] =
    ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];
/// Side length of a CIFAR image in pixels.
pub const CIFAR_SIDE: usize = 32;
/// Bytes of one image: three channels of 32×32.
pub const CIFAR_IMAGE_BYTES: usize = 3 * CIFAR_SIDE * CIFAR_SIDE;
/// Bytes of one record: the label byte and the image.
pub const CIFAR_RECORD_BYTES: usize = 1 + CIFAR_IMAGE_BYTES;
/// The largest batch file read: a real one is 30,730,000 bytes (10,000 records); this allows
/// about 350,000 records, so that a huge file of something else is refused before it fills the
/// memory.
pub const CIFAR_MAX_FILE_BYTES: u64 = 1 << 30;
/// Most bytes of `batches.meta.txt` read: ten names take 72 bytes.
const MAX_META_BYTES: u64 = 1 << 20;
/// Labels are bytes, so no more classes than this can have images.
const MAX_CLASSES: usize = 256;

/// Whether `path` names something, even a broken link or a pipe: those are refused by name when
/// opened rather than counted as missing.
fn present(path: &Path) -> bool {
    !matches!(std::fs::symlink_metadata(path), Err(e) if e.kind() == io::ErrorKind::NotFound)
}

/// Whether `dir` itself holds CIFAR-10 batches (any `data_batch_N.bin` or `test_batch.bin`).
fn holds_batches(dir: &Path) -> bool {
    CIFAR_TRAIN_FILES.iter().chain(std::iter::once(&CIFAR_TEST_FILE)).any(|name| present(&dir.join(name)))
}

/// The folder that holds the batches when `dir` is a CIFAR-10 folder: `dir` itself, or its
/// `cifar-10-batches-bin/` (where the archive unpacks) when `dir` holds no batches itself.
#[must_use]
pub fn cifar_folder(dir: &Path) -> Option<PathBuf> {
    if holds_batches(dir) {
        return Some(dir.to_path_buf());
    }
    let nested = dir.join(CIFAR_ARCHIVE_FOLDER);
    (nested.is_dir() && holds_batches(&nested)).then_some(nested)
}

/// One batch file read: its labels and pixels, and the file's name for messages.
struct BatchFile {
    name: String,
    labels: Vec<u8>,
}

/// Reads a CIFAR-10 binary folder (or the folder holding `cifar-10-batches-bin/`): the training
/// split is every `data_batch_N.bin` present, in order (a note says so when fewer than five are
/// there), the test split is `test_batch.bin`. Class names come from `batches.meta.txt`
/// (non-empty lines), else they are CIFAR-10's ten. `progress` hears after each file, in
/// images.
///
/// # Errors
/// [`DataError::CifarSplitMissing`] when the training or the test batches are missing,
/// [`DataError::File`] for a batch that is not a regular file, [`DataError::Empty`],
/// [`DataError::CifarRecordSize`], [`DataError::CifarTooLarge`], [`DataError::CifarLabel`] (a
/// label without a class), [`DataError::CifarClassNames`] (`batches.meta.txt` names too few or
/// too many classes), [`DataError::Io`].
pub fn load_cifar(dir: &Path, progress: &(dyn Fn(LoadProgress) + Sync)) -> Result<Splits, DataError> {
    let Some(root) = cifar_folder(dir) else {
        return Err(DataError::UnknownDataKind { dir: dir.to_path_buf() });
    };
    let train_paths: Vec<PathBuf> =
        CIFAR_TRAIN_FILES.iter().map(|name| root.join(name)).filter(|path| present(path)).collect();
    let test_path = root.join(CIFAR_TEST_FILE);
    if train_paths.is_empty() {
        return Err(DataError::CifarSplitMissing {
            dir: root,
            found: CIFAR_TEST_FILE.to_owned(),
            missing: format!("{} … {}", CIFAR_TRAIN_FILES[0], CIFAR_TRAIN_FILES[4]),
            split: "training",
        });
    }
    if !present(&test_path) {
        let found: Vec<String> = train_paths.iter().map(|p| file_name(p)).collect();
        return Err(DataError::CifarSplitMissing {
            dir: root,
            found: found.join(", "),
            missing: CIFAR_TEST_FILE.to_owned(),
            split: "test",
        });
    }
    let names = read_meta(&root)?;

    // Sizes first, so that a file of the wrong size is refused before seconds of reading the
    // others, and the pixels are allocated once.
    let train_sizes = train_paths.iter().map(|p| checked_size(p)).collect::<Result<Vec<_>, _>>()?;
    let test_size = checked_size(&test_path)?;
    let train_records: usize = train_sizes.iter().sum();
    let total = train_records + test_size;
    let mut done = 0;
    progress(LoadProgress { done, total });

    let mut train_images = Vec::with_capacity(train_records * CIFAR_IMAGE_BYTES);
    let mut train_labels = Vec::with_capacity(train_records);
    let mut train_batches = Vec::with_capacity(train_paths.len());
    for (path, &records) in train_paths.iter().zip(&train_sizes) {
        let batch = read_batch(path, records, &mut train_images)?;
        train_labels.extend_from_slice(&batch.labels);
        done += batch.labels.len();
        progress(LoadProgress { done, total });
        train_batches.push(batch);
    }
    let mut test_images = Vec::with_capacity(test_size * CIFAR_IMAGE_BYTES);
    let test_batch = read_batch(&test_path, test_size, &mut test_images)?;
    done += test_batch.labels.len();
    progress(LoadProgress { done, total });
    let test_labels = test_batch.labels.clone();

    let class_names = decide_names(&root, names, train_batches.iter().chain(std::iter::once(&test_batch)))?;
    let side = CIFAR_SIDE;
    let train = Dataset::with_channels(train_images, train_labels, 3, side, side, class_names.clone())?;
    let test = Dataset::with_channels(test_images, test_labels, 3, side, side, class_names)?;

    let mut notes = Vec::new();
    if root != dir {
        notes.push(format!("read the CIFAR-10 batches in {}", root.display()));
    }
    if train_paths.len() < CIFAR_TRAIN_FILES.len() {
        let found: Vec<String> = train_paths.iter().map(|p| file_name(p)).collect();
        notes.push(format!(
            "only {} of the {} training batches are there ({}): {} training images",
            train_paths.len(),
            CIFAR_TRAIN_FILES.len(),
            found.join(", "),
            sep(&train.len())
        ));
    }
    Splits::new(train, test, root.display().to_string(), notes)
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// The number of records in the batch at `path`, from its size, after checking that the size
/// is a whole number of records. The file is opened here so that a pipe or device is refused
/// by name before anything is read.
fn checked_size(path: &Path) -> Result<usize, DataError> {
    let file = fileio::open_regular(path)?;
    let name = path.display().to_string();
    let bytes = file.metadata().map_err(|source| DataError::Io { name: name.clone(), source })?.len();
    records_in(&name, bytes)
}

/// Records in a batch of `bytes` bytes, or why that is not a batch.
fn records_in(name: &str, bytes: u64) -> Result<usize, DataError> {
    if bytes == 0 {
        return Err(DataError::Empty { name: name.to_owned() });
    }
    if bytes > CIFAR_MAX_FILE_BYTES {
        return Err(DataError::CifarTooLarge { name: name.to_owned(), bytes, limit: CIFAR_MAX_FILE_BYTES });
    }
    let record = CIFAR_RECORD_BYTES as u64;
    if !bytes.is_multiple_of(record) {
        return Err(DataError::CifarRecordSize { name: name.to_owned(), bytes, records: bytes / record });
    }
    usize::try_from(bytes / record).map_err(|_| DataError::CifarTooLarge {
        name: name.to_owned(),
        bytes,
        limit: CIFAR_MAX_FILE_BYTES,
    })
}

/// Reads the batch at `path` whole (at most the `records` its size promised, so a file that
/// grows meanwhile cannot make the read endless) and appends its pixels to `images`.
fn read_batch(path: &Path, records: usize, images: &mut Vec<u8>) -> Result<BatchFile, DataError> {
    let name = path.display().to_string();
    let file = fileio::open_regular(path)?;
    let limit = records * CIFAR_RECORD_BYTES;
    let mut bytes = Vec::with_capacity(limit);
    file.take(limit as u64).read_to_end(&mut bytes).map_err(|source| DataError::Io { name: name.clone(), source })?;
    // The file may have shrunk since its size was taken.
    let records = records_in(&name, bytes.len() as u64)?;
    let mut labels = Vec::with_capacity(records);
    for record in bytes.chunks_exact(CIFAR_RECORD_BYTES) {
        labels.push(record[0]);
        images.extend_from_slice(&record[1..]);
    }
    Ok(BatchFile { name, labels })
}

/// The lines of `batches.meta.txt`, if the folder has one.
fn read_meta(root: &Path) -> Result<Option<(PathBuf, Vec<String>)>, DataError> {
    let path = root.join(CIFAR_META_FILE);
    if !present(&path) {
        return Ok(None);
    }
    let file = fileio::open_regular(&path)?;
    let mut bytes = Vec::new();
    file.take(MAX_META_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|source| DataError::Io { name: path.display().to_string(), source })?;
    // Lossy: a stray byte in one name should not make the whole set unreadable.
    let names = name_lines(&String::from_utf8_lossy(&bytes));
    Ok(Some((path, names)))
}

/// The class names, checked against the largest label of `batches`.
fn decide_names<'a>(
    root: &Path,
    meta: Option<(PathBuf, Vec<String>)>,
    batches: impl Iterator<Item = &'a BatchFile>,
) -> Result<Vec<String>, DataError> {
    // The first record holding the largest label, for the message.
    let largest = largest_label(batches.map(|batch| (batch, batch.labels.as_slice())));
    let needed = largest.map_or(0, |(_, _, l)| usize::from(l) + 1);
    match meta {
        Some((path, names)) => {
            if names.len() < needed.max(2) || names.len() > MAX_CLASSES {
                return Err(DataError::CifarClassNames {
                    path,
                    found: names.len(),
                    needed: needed.max(2),
                    largest: largest.map(|(batch, record, label)| (batch.name.clone(), record, label)),
                });
            }
            Ok(names)
        }
        None => {
            if let Some((batch, record, label)) = largest
                && usize::from(label) >= CIFAR_CLASSES.len()
            {
                return Err(DataError::CifarLabel {
                    name: batch.name.clone(),
                    record,
                    label,
                    num_classes: CIFAR_CLASSES.len(),
                    meta: root.join(CIFAR_META_FILE),
                });
            }
            Ok(CIFAR_CLASSES.iter().map(|&s| s.to_owned()).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{CIFAR_RECORD_BYTES, records_in};
    use crate::data::DataError;

    #[test]
    fn a_size_is_a_whole_number_of_records_or_an_error() {
        assert_eq!(records_in("x", 3 * CIFAR_RECORD_BYTES as u64).unwrap(), 3);
        assert!(matches!(records_in("x", 0), Err(DataError::Empty { .. })));
        let e = records_in("x", 2 * CIFAR_RECORD_BYTES as u64 + 5).unwrap_err();
        assert!(matches!(e, DataError::CifarRecordSize { bytes: 6151, records: 2, .. }), "{e:?}");
        assert!(matches!(records_in("x", 1 << 40), Err(DataError::CifarTooLarge { .. })));
    }
}
