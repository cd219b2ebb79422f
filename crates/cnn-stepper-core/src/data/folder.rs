//! Image folders in torchvision's `ImageFolder` layout: one folder of pictures per class.
//!
//! Two layouts are read:
//! - `train/<class>/*` and `test/<class>/*` (the test folder may also be called `val`, `valid`
//!   or `validation`; any case): the two splits as given. Both must hold the same classes.
//! - `<class>/*` only (or `train/<class>/*` without a test folder): 20% of each class is held
//!   out as the test split, chosen by a hash of the file name and [`LoadOptions::seed`], so
//!   `train`, `eval` and the window agree on the split and adding a picture moves no other.
//!
//! Class names are the folder names sorted as Python's `sorted()` does (by code point), so
//! labels match torchvision's. Pictures (PNG, JPEG, BMP, GIF's first frame) are decoded in
//! parallel and each is kept only as its resized bytes ([`Picture::to_bytes`]): 60,000 colour
//! 32×32 pictures take 184 MB whatever the originals' sizes. The set is in colour when any
//! picture has colour, grey otherwise or when [`LoadOptions::grayscale`] asks.
//!
//! Skipped, and counted in a note: files without a picture extension (`.txt`, `Thumbs.db`),
//! hidden files and folders (`.DS_Store`, macOS's `._photo.jpg`), and folders inside a class
//! folder (only the pictures directly in a class folder are read; torchvision would read them
//! too, but a nested folder is more often an old copy than more of the class).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use rayon::prelude::*;

use super::error::{ClassMismatch, sep};
use super::picture::{Picture, is_picture};
use super::{DataError, Dataset, LoadOptions, LoadProgress, Splits};
use crate::fileio::FileError;

/// The side pictures are resized to unless `--image-size` says otherwise.
pub const DEFAULT_IMAGE_SIZE: usize = 32;
/// The smallest `--image-size`: below it a picture says little and a 5×5 filter covers it.
pub const MIN_IMAGE_SIZE: usize = 8;
/// The largest `--image-size`: a 3×256×256 input is already far beyond what the app's
/// networks train in reasonable time on a CPU.
pub const MAX_IMAGE_SIZE: usize = 256;
/// The most classes a folder may have: labels are bytes.
pub const MAX_CLASSES: usize = 256;
/// Names of the test folder beside `train/`, in the order they are looked for (any case).
pub const TEST_FOLDER_NAMES: [&str; 4] = ["test", "val", "valid", "validation"];
/// The share of each class held out for testing when the folder has no test folder, in percent.
pub const HELD_OUT_PERCENT: usize = 20;
/// The most bytes the resized pictures may take in memory (4 GiB).
const MAX_TOTAL_BYTES: u64 = 4 << 30;
/// How many skipped files a note names before "and N more".
const NAMED_IN_NOTES: usize = 3;
/// Progress is reported about this many times per load.
const PROGRESS_CALLS: usize = 100;

/// Whether `dir` looks like an image folder: it has a `train` folder (any case), or a
/// sub-folder that directly holds a picture. Only as much of the folder is listed as needed.
#[must_use]
pub fn looks_like_image_folder(dir: &Path) -> bool {
    let Ok(entries) = fs::read_dir(dir) else { return false };
    let mut subfolders = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !is_dir(&entry.path()) {
            continue;
        }
        if name.eq_ignore_ascii_case("train") {
            return true;
        }
        subfolders.push(entry.path());
    }
    subfolders.iter().any(|sub| {
        fs::read_dir(sub).into_iter().flatten().flatten().any(|e| {
            let path = e.path();
            !hidden(&e.file_name().to_string_lossy()) && is_picture(&path) && !is_dir(&path)
        })
    })
}

/// Reads the image folder `dir` as the module documentation says.
///
/// `progress` is called from the decoding threads about a hundred times, with the pictures
/// decoded so far of all to decode.
///
/// # Errors
/// [`DataError::FolderMissing`] / [`DataError::NotAFolder`], [`DataError::ImageSize`],
/// [`DataError::NoClassFolders`], [`DataError::SingleClass`], [`DataError::TooManyClasses`],
/// [`DataError::EmptyClass`], [`DataError::ClassMismatch`], [`DataError::NothingToHoldOut`],
/// [`DataError::TooManyPictures`]; for a picture, [`DataError::Picture`] naming the file and
/// what the decoder said, [`DataError::File`] for one that is not a regular file (a named
/// pipe, a device) and [`DataError::Io`].
pub fn load_folder(
    dir: &Path,
    options: &LoadOptions,
    progress: &(dyn Fn(LoadProgress) + Sync),
) -> Result<Splits, DataError> {
    let side = image_size(options)?;
    let layout = Layout::scan(dir, options.seed)?;
    let items: Vec<&Item> = layout.train.iter().chain(&layout.test).collect();
    let decoded = decode(dir, &items, side, options.grayscale, progress)?;
    let channels = decoded.channels;
    let image_len = channels * side * side;
    let mut images = decoded.bytes;
    let test_images = images.split_off(layout.train.len() * image_len);
    let labels = |items: &[Item]| items.iter().map(|i| i.label).collect::<Vec<u8>>();
    let train =
        Dataset::with_channels(images, labels(&layout.train), channels, side, side, layout.class_names.clone())?;
    let test = Dataset::with_channels(test_images, labels(&layout.test), channels, side, side, layout.class_names)?;
    let mut notes = layout.notes;
    notes.push(decoded.note);
    Splits::new(train, test, dir.display().to_string(), notes)
}

/// Reads only the test split of the image folder `dir`, for evaluating: the pictures of the
/// training split are not decoded (with a held-out share they are listed, to find the share).
///
/// Returns the split and the notes [`load_folder`] would give. The colour is decided by the
/// test pictures alone, so a caller whose network expects colour may have to widen a grey
/// result.
///
/// # Errors
/// As [`load_folder`].
pub fn load_folder_test(
    dir: &Path,
    options: &LoadOptions,
    progress: &(dyn Fn(LoadProgress) + Sync),
) -> Result<(Dataset, Vec<String>), DataError> {
    let side = image_size(options)?;
    let layout = Layout::scan(dir, options.seed)?;
    let items: Vec<&Item> = layout.test.iter().collect();
    let decoded = decode(dir, &items, side, options.grayscale, progress)?;
    let labels = layout.test.iter().map(|i| i.label).collect();
    let test = Dataset::with_channels(decoded.bytes, labels, decoded.channels, side, side, layout.class_names)?;
    let mut notes = layout.notes;
    notes.push(decoded.note);
    Ok((test, notes))
}

/// The side from the options, checked.
fn image_size(options: &LoadOptions) -> Result<usize, DataError> {
    let side = options.image_size.unwrap_or(DEFAULT_IMAGE_SIZE);
    if !(MIN_IMAGE_SIZE..=MAX_IMAGE_SIZE).contains(&side) {
        return Err(DataError::ImageSize { size: side, min: MIN_IMAGE_SIZE, max: MAX_IMAGE_SIZE });
    }
    Ok(side)
}

/// One picture to read and its label.
#[derive(Debug)]
struct Item {
    path: PathBuf,
    label: u8,
}

/// What is in an image folder: the pictures of each split, the class names, and what the user
/// should be told about how they were found.
#[derive(Debug)]
struct Layout {
    train: Vec<Item>,
    test: Vec<Item>,
    class_names: Vec<String>,
    notes: Vec<String>,
}

/// What was passed over while listing, for the notes.
#[derive(Debug, Default)]
struct Skipped {
    /// Files that are not pictures (or hidden), relative to the data folder (`cat/notes.txt`,
    /// `train/cat/notes.txt`).
    files: Vec<String>,
    /// Folders inside class folders, relative to the data folder.
    folders: Vec<String>,
}

/// One class folder's pictures, sorted by name.
#[derive(Debug)]
struct ClassFolder {
    name: String,
    pictures: Vec<PathBuf>,
}

impl Layout {
    fn scan(dir: &Path, seed: u64) -> Result<Self, DataError> {
        check_folder(dir)?;
        let mut skipped = Skipped::default();
        let mut notes = Vec::new();
        let SplitFolders { train: train_dir, test: test_dir, unused: other_tests } = find_splits(dir)?;
        let layout = match (train_dir, test_dir) {
            (Some(train_dir), Some(test_dir)) => {
                let train = class_folders(dir, &train_dir, &mut skipped)?;
                let test = class_folders(dir, &test_dir, &mut skipped)?;
                let names: Vec<String> = train.iter().map(|c| c.name.clone()).collect();
                let test_names: Vec<String> = test.iter().map(|c| c.name.clone()).collect();
                if names != test_names {
                    let (a, b): (BTreeSet<&String>, BTreeSet<&String>) =
                        (names.iter().collect(), test_names.iter().collect());
                    return Err(DataError::ClassMismatch(Box::new(ClassMismatch {
                        train: train_dir,
                        test: test_dir,
                        only_train: a.difference(&b).map(|s| (*s).clone()).collect(),
                        only_test: b.difference(&a).map(|s| (*s).clone()).collect(),
                    })));
                }
                if !other_tests.is_empty() {
                    notes.push(format!(
                        "read {} as the test split; not read: {}",
                        folder_name(&test_dir),
                        other_tests.iter().map(|p| folder_name(p)).collect::<Vec<_>>().join(", ")
                    ));
                }
                let items = |classes: Vec<ClassFolder>| -> Vec<Item> {
                    classes
                        .into_iter()
                        .enumerate()
                        .flat_map(|(label, c)| {
                            c.pictures.into_iter().map(move |path| Item { path, label: label as u8 })
                        })
                        .collect()
                };
                Layout { train: items(train), test: items(test), class_names: names, notes }
            }
            (train_dir, _) => {
                let classes_dir = train_dir.unwrap_or_else(|| dir.to_path_buf());
                let classes = class_folders(dir, &classes_dir, &mut skipped)?;
                hold_out(&classes_dir, classes, seed, notes)?
            }
        };
        let mut layout = layout;
        layout.notes.extend(skipped.notes());
        Ok(layout)
    }
}

impl Skipped {
    fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if !self.files.is_empty() {
            let what = if self.files.len() == 1 {
                "1 file that is not a picture (PNG, JPEG, BMP, GIF) or is hidden".to_owned()
            } else {
                format!("{} files that are not pictures (PNG, JPEG, BMP, GIF) or are hidden", sep(&self.files.len()))
            };
            notes.push(format!("skipped {what}: {}", few(&self.files)));
        }
        if !self.folders.is_empty() {
            notes.push(format!(
                "ignored {} inside class folders (only the pictures directly in a class folder are read): {}",
                count(self.folders.len(), "folder", "folders"),
                few(&self.folders)
            ));
        }
        notes
    }
}

/// The split folders of an image folder.
struct SplitFolders {
    /// `train` (any case), if there is one.
    train: Option<PathBuf>,
    /// The test folder beside it, if any.
    test: Option<PathBuf>,
    /// Other test-folder spellings present but passed over.
    unused: Vec<PathBuf>,
}

/// The training folder (`train`, any case) and the test folder beside it, if any, and other
/// test-folder spellings that were passed over.
fn find_splits(dir: &Path) -> Result<SplitFolders, DataError> {
    let mut train = None;
    let mut tests: Vec<(usize, PathBuf)> = Vec::new();
    for Entry { name, path, dir } in list(dir)? {
        if !dir {
            continue;
        }
        if name.eq_ignore_ascii_case("train") {
            // Two spellings (`train` and `Train`) on a case-sensitive disk: the first by name.
            if train.as_ref().is_none_or(|(n, _): &(String, PathBuf)| name < *n) {
                train = Some((name, path));
            }
        } else if let Some(rank) = TEST_FOLDER_NAMES.iter().position(|t| name.eq_ignore_ascii_case(t)) {
            tests.push((rank, path));
        }
    }
    let Some((_, train)) = train else { return Ok(SplitFolders { train: None, test: None, unused: Vec::new() }) };
    tests.sort();
    let mut tests = tests.into_iter().map(|(_, p)| p);
    let test = tests.next();
    Ok(SplitFolders { train: Some(train), test, unused: tests.collect() })
}

/// The class folders in `dir`, sorted by name, each with its pictures sorted by name. Skipped
/// files are named relative to `root`, the folder `--data` named; loose files in `dir` are
/// counted only when it is `root` (beside `train/` they are a README, not data).
fn class_folders(root: &Path, dir: &Path, skipped: &mut Skipped) -> Result<Vec<ClassFolder>, DataError> {
    let shown = |path: &Path| path.strip_prefix(root).unwrap_or(path).display().to_string();
    let top = dir == root;
    let mut classes = Vec::new();
    for Entry { name, path, dir: folder } in list(dir)? {
        if hidden(&name) {
            // `.ipynb_checkpoints`, `.git`: never a class.
            skipped.files.push(shown(&path));
        } else if folder {
            classes.push((name, path));
        } else if top {
            skipped.files.push(shown(&path));
        }
    }
    classes.sort();
    match classes.len() {
        0 => return Err(DataError::NoClassFolders { dir: dir.to_path_buf() }),
        1 => return Err(DataError::SingleClass { dir: dir.to_path_buf(), class: classes.swap_remove(0).0 }),
        n if n > MAX_CLASSES => {
            return Err(DataError::TooManyClasses { dir: dir.to_path_buf(), count: n, max: MAX_CLASSES });
        }
        _ => {}
    }
    classes
        .into_iter()
        .map(|(name, path)| {
            let mut pictures = Vec::new();
            let mut not_pictures = 0;
            for Entry { name: file, path: file_path, dir: folder } in list(&path)? {
                if hidden(&file) {
                    not_pictures += 1;
                    skipped.files.push(shown(&file_path));
                } else if folder {
                    skipped.folders.push(shown(&file_path));
                } else if is_picture(&file_path) {
                    pictures.push(file_path);
                } else {
                    not_pictures += 1;
                    skipped.files.push(shown(&file_path));
                }
            }
            if pictures.is_empty() {
                return Err(DataError::EmptyClass { dir: path, skipped: not_pictures });
            }
            pictures.sort();
            Ok(ClassFolder { name, pictures })
        })
        .collect()
}

/// Splits each class: [`HELD_OUT_PERCENT`] of its pictures (rounded, at least one when it has
/// two) go to the test split, those whose names hash lowest with `seed`.
fn hold_out(dir: &Path, classes: Vec<ClassFolder>, seed: u64, mut notes: Vec<String>) -> Result<Layout, DataError> {
    let (mut train, mut test) = (Vec::new(), Vec::new());
    let class_names = classes.iter().map(|c| c.name.clone()).collect();
    let total: usize = classes.iter().map(|c| c.pictures.len()).sum();
    for (label, class) in classes.into_iter().enumerate() {
        let n = class.pictures.len();
        let share = if n < 2 { 0 } else { ((n * HELD_OUT_PERCENT + 50) / 100).clamp(1, n - 1) };
        let mut keyed: Vec<(u64, PathBuf)> = class
            .pictures
            .into_iter()
            .map(|p| (name_hash(seed, p.file_name().map(|n| n.as_encoded_bytes()).unwrap_or_default()), p))
            .collect();
        keyed.sort();
        let label = label as u8;
        let mut picked: Vec<(bool, PathBuf)> =
            keyed.into_iter().enumerate().map(|(rank, (_, path))| (rank < share, path)).collect();
        // Back in name order within each split, so a listing reads as the folder does.
        picked.sort_by(|a, b| a.1.cmp(&b.1));
        for (held, path) in picked {
            if held { &mut test } else { &mut train }.push(Item { path, label });
        }
    }
    if test.is_empty() {
        return Err(DataError::NothingToHoldOut { dir: dir.to_path_buf() });
    }
    notes.insert(
        0,
        format!(
            "held out {HELD_OUT_PERCENT}% of each class as the test split: {} of {} pictures, seed {seed}",
            sep(&test.len()),
            sep(&total)
        ),
    );
    Ok(Layout { train, test, class_names, notes })
}

/// A 64-bit hash of a file name and the seed (FNV-1a, then SplitMix64's finaliser to spread
/// similar names): the same on every machine and in every version, unlike `DefaultHasher`.
fn name_hash(seed: u64, name: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for &b in name {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The pictures decoded and resized, and the note saying how.
struct Decoded {
    bytes: Vec<u8>,
    channels: usize,
    note: String,
}

/// Decodes `items` in parallel into one buffer of `side × side` images, in colour if any has
/// colour (and `grayscale` is not set), else grey.
fn decode(
    dir: &Path,
    items: &[&Item],
    side: usize,
    grayscale: bool,
    progress: &(dyn Fn(LoadProgress) + Sync),
) -> Result<Decoded, DataError> {
    let plane = side * side;
    let total = items.len();
    // The colour bytes are made first (the colour is known only once every picture is read);
    // a grey set is narrowed in place afterwards, so the peak is three bytes per pixel.
    let needed = total as u64 * 3 * plane as u64;
    if needed > MAX_TOTAL_BYTES {
        return Err(DataError::TooManyPictures {
            dir: dir.to_path_buf(),
            pictures: total,
            bytes_each: 3 * plane,
            limit: MAX_TOTAL_BYTES,
        });
    }
    let mut bytes = vec![0u8; total * 3 * plane];
    let colour = AtomicBool::new(false);
    let done = AtomicUsize::new(0);
    let every = total.div_ceil(PROGRESS_CALLS).max(1);
    progress(LoadProgress { done: 0, total });
    bytes.par_chunks_mut(3 * plane).zip(items.par_iter()).try_for_each(|(slot, item)| {
        let picture = Picture::open(&item.path)?;
        slot.copy_from_slice(&picture.to_bytes(3, side, side));
        if picture.is_colour() {
            colour.store(true, Ordering::Relaxed);
        }
        let n = done.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_multiple_of(every) || n == total {
            progress(LoadProgress { done: n, total });
        }
        Ok::<(), DataError>(())
    })?;
    let colour = colour.into_inner();
    let shape = format!("{side}×{side}");
    let (channels, note) = if colour && !grayscale {
        (3, format!("pictures resized to {shape}, in colour (3 channels)"))
    } else {
        to_grey(&mut bytes, plane);
        let why = if colour { "turned grey as asked" } else { "grey: no picture has colour" };
        (1, format!("pictures resized to {shape}, {why} (1 channel)"))
    };
    Ok(Decoded { bytes, channels, note })
}

/// Narrows C×H×W colour images to grey in place, with the weights [`Picture::to_bytes`] uses
/// (a grey picture's three equal channels give that same level back).
fn to_grey(bytes: &mut Vec<u8>, plane: usize) {
    let images = bytes.len() / (3 * plane).max(1);
    // Image i's grey plane is written at i·plane, at or before where its colour planes are read
    // (3i·plane), and after every plane read before it: nothing is overwritten before it is read.
    for i in 0..images {
        for j in 0..plane {
            let at = 3 * i * plane + j;
            let (r, g, b) = (bytes[at], bytes[at + plane], bytes[at + 2 * plane]);
            bytes[i * plane + j] = grey([r, g, b]);
        }
    }
    bytes.truncate(images * plane);
    bytes.shrink_to_fit();
}

/// ITU-R 601 luma, rounded, as [`Picture::to_bytes`] makes grey.
fn grey([r, g, b]: [u8; 3]) -> u8 {
    ((299 * u32::from(r) + 587 * u32::from(g) + 114 * u32::from(b) + 500) / 1000) as u8
}

/// One entry of a folder.
struct Entry {
    name: String,
    path: PathBuf,
    /// A folder, or a link to one.
    dir: bool,
}

/// The folder's entries, in no particular order.
fn list(dir: &Path) -> Result<Vec<Entry>, DataError> {
    let io = |source| DataError::Io { name: dir.display().to_string(), source };
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let path = entry.path();
        // The entry's own type costs no system call on most file systems; only links are
        // followed, with one `stat` each.
        let dir = match entry.file_type() {
            Ok(t) if t.is_symlink() => is_dir(&path),
            Ok(t) => t.is_dir(),
            Err(_) => is_dir(&path),
        };
        out.push(Entry { name: entry.file_name().to_string_lossy().into_owned(), path, dir });
    }
    Ok(out)
}

/// Whether `path` is a folder, links followed; a dangling link is not (opening it as a
/// picture then names it).
fn is_dir(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_dir())
}

/// Hidden files and folders (`.DS_Store`, `._photo.jpg`, `.ipynb_checkpoints`), and Windows'
/// thumbnail caches, which are never pictures of a class.
fn hidden(name: &str) -> bool {
    name.starts_with('.') || name.eq_ignore_ascii_case("Thumbs.db") || name.eq_ignore_ascii_case("desktop.ini")
}

fn check_folder(dir: &Path) -> Result<(), DataError> {
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(DataError::NotAFolder { path: dir.to_path_buf() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(DataError::FolderMissing { dir: dir.to_path_buf() }),
        Err(source) => Err(FileError::from_io(dir, "open the image folder", source).into()),
    }
}

/// The last component of a path, for notes.
fn folder_name(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| format!("{}/", n.to_string_lossy()))
}

fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 { format!("1 {one}") } else { format!("{} {many}", sep(&n)) }
}

/// The first few names, sorted, and how many more.
fn few(names: &[String]) -> String {
    let mut sorted: Vec<&String> = names.iter().collect();
    sorted.sort();
    let mut text = sorted.iter().take(NAMED_IN_NOTES).map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
    if names.len() > NAMED_IN_NOTES {
        text.push_str(&format!(" and {} more", sep(&(names.len() - NAMED_IN_NOTES))));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grey_narrowing_in_place_matches_the_picture_grey() {
        // Two 1×2 images: red/green and white/black.
        let mut bytes = vec![255, 0, 0, 255, 0, 0, 255, 0, 255, 0, 255, 0];
        to_grey(&mut bytes, 2);
        assert_eq!(bytes, vec![76, 150, 255, 0]);
    }

    #[test]
    fn the_name_hash_depends_on_the_seed_and_the_name() {
        assert_ne!(name_hash(0, b"a.png"), name_hash(1, b"a.png"));
        assert_ne!(name_hash(0, b"a.png"), name_hash(0, b"b.png"));
        assert_eq!(name_hash(7, b"cat.jpg"), name_hash(7, b"cat.jpg"));
    }
}
