//! Files that cannot lie (issue 13): what is refused on load and how saving treats the path.
//!
//! - `fileio`: named pipes, devices, directories, sockets and symlink loops are refused by name
//!   and kind; saves follow symbolic links to their target, refuse what is not a regular file,
//!   clean up after killed saves; `check_writable` says before a run whether a save can work.
//! - Weights and session files: checksums name the damaged tensor or metadata key; a damaged
//!   session is refused rather than downgraded to weights; NaN weights and momentum are refused
//!   by tensor; layout errors name the tensor; a huge damaged file is refused from its header;
//!   identical sessions give identical bytes; files without checksums load with a note.
//! - Dataset folders: pipes and loops are not "missing", empty splits name the file, differing
//!   raw and `.gz` copies are refused, and the test split loads without the training files.
//!
//! FIFOs, sockets, device nodes and symlinks are made in a temporary folder. `/dev/null` is only
//! ever opened for reading here; nothing writes to a device.

#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers may panic: that is the failure report.

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use cnn_stepper_core::data::{self, DataError, Dataset, IMAGES_MAGIC, LABELS_MAGIC, Splits};
use cnn_stepper_core::engine::weights::{self, Integrity, WeightsError, WeightsMeta};
use cnn_stepper_core::engine::{ConvEngine, Init, ModelConfig, Params, Preset};
use cnn_stepper_core::fileio::{self, FileError, FileKind};
use cnn_stepper_core::trainer::Session;
use cnn_stepper_core::trainer::checkpoint::{self, CheckpointError};

// ---------------------------------------------------------------------------------------------
// Helpers

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().expect("mkfifo runs");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// A character device node like `/dev/null` (major 1, minor 3) inside the test's own folder,
/// so that a broken save could only ever replace this node. `None` where device nodes cannot
/// be made (not root, or a container without the capability).
fn char_device(path: &Path) -> Option<()> {
    let made = Command::new("mknod").arg(path).args(["c", "1", "3"]).status().ok()?.success();
    made.then_some(())
}

/// Names in `dir`, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// A process id that is certainly not running: a child that has exited and been reaped.
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

/// The tests' tiny network (see `common::tiny`).
fn small() -> ModelConfig {
    common::tiny()
}

fn small_meta() -> WeightsMeta {
    WeightsMeta { config: small(), preset: Some("recommended".into()), seed: Some(7), step: Some(1234) }
}

fn weights_file() -> Vec<u8> {
    weights::to_bytes(&Params::init(&small(), Init::He, 3), &small_meta()).unwrap()
}

/// A 12-image 8×8 data set (both splits) for the small network.
fn tiny_data() -> Arc<Splits> {
    let n = 12;
    let images: Vec<u8> = (0..n * 64).map(|i| ((i * 37 + 11) % 256) as u8).collect();
    let labels: Vec<u8> = (0..n).map(|i| (i % 4) as u8).collect();
    let names: Vec<String> = (0..4).map(|c| c.to_string()).collect();
    let set = Dataset::new(images, labels, 8, 8, names).unwrap();
    Arc::new(Splits { train: set.clone(), test: set, source: "tiny".into(), notes: Vec::new() })
}

/// A session of the small network after 3 steps of batches of 4.
fn tiny_session() -> Session {
    let mut s = Session::new(tiny_data(), 1, Preset::Recommended, common::TINY, ConvEngine::Fast).unwrap();
    let mut settings = s.settings();
    settings.batch_size = 4;
    s.set_settings(settings).unwrap();
    for _ in 0..3 {
        s.step_batch(&mut |_, _| {}).unwrap();
    }
    s
}

fn session_file() -> Vec<u8> {
    tiny_session().to_file().unwrap().to_bytes("tiny").unwrap()
}

fn open_session(bytes: &[u8]) -> Result<checkpoint::Opened, CheckpointError> {
    checkpoint::from_bytes(bytes, "s.safetensors", Some(12), ConvEngine::Fast, None)
}

/// Where the JSON header ends.
fn header_end(bytes: &[u8]) -> usize {
    8 + usize::try_from(u64::from_le_bytes(bytes[..8].try_into().unwrap())).unwrap()
}

/// A header's metadata map.
type Metadata = std::collections::HashMap<String, String>;

/// The header's metadata map and the byte range of each tensor's data in the file.
fn layout(bytes: &[u8]) -> (Metadata, Vec<(String, std::ops::Range<usize>)>) {
    let (_, meta) = safetensors::SafeTensors::read_metadata(bytes).unwrap();
    let start = header_end(bytes);
    let tensors = meta
        .tensors()
        .into_iter()
        .map(|(name, info)| (name, start + info.data_offsets.0..start + info.data_offsets.1))
        .collect();
    (meta.metadata().clone().unwrap_or_default(), tensors)
}

/// The file rebuilt as versions before checksums wrote it: the same tensors and metadata
/// without `"checksums"`, with `edit` applied to the metadata first.
fn without_checksums(bytes: &[u8], edit: impl FnOnce(&mut Metadata)) -> Vec<u8> {
    let st = safetensors::SafeTensors::deserialize(bytes).unwrap();
    let (mut meta, _) = layout(bytes);
    assert!(meta.remove("checksums").is_some(), "the file had checksums");
    edit(&mut meta);
    safetensors::serialize(st.tensors(), Some(meta)).unwrap()
}

/// Flips bit 0 of the first character of metadata value `key` in the header. The characters
/// that start our values (`{`, letters, digits) stay harmless JSON characters.
fn flip_metadata_value(bytes: &mut [u8], key: &str) {
    let end = header_end(bytes);
    let needle = format!("\"{key}\":\"");
    let header = &bytes[8..end];
    let at = header.windows(needle.len()).position(|w| w == needle.as_bytes()).unwrap_or_else(|| panic!("{key}"));
    bytes[8 + at + needle.len()] ^= 1;
}

/// Replaces the first occurrence of `from` in the header by `to` (same length).
fn edit_header(bytes: &mut [u8], from: &str, to: &str) {
    assert_eq!(from.len(), to.len());
    let end = header_end(bytes);
    let at = bytes[8..end].windows(from.len()).position(|w| w == from.as_bytes()).unwrap_or_else(|| panic!("{from}"));
    bytes[8 + at..8 + at + to.len()].copy_from_slice(to.as_bytes());
}

/// A safetensors file from a header written by hand.
fn raw_file(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

// ---------------------------------------------------------------------------------------------
// fileio: opening

#[test]
fn open_regular_refuses_a_named_pipe_by_kind_without_blocking() {
    // Without the check, opening a FIFO that has no writer blocks this test forever.
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("model.safetensors");
    mkfifo(&fifo);
    let err = fileio::open_regular(&fifo).unwrap_err();
    assert!(matches!(err, FileError::NotRegular { kind: FileKind::NamedPipe, .. }), "{err}");
    assert_eq!(err.to_string(), format!("{} is a named pipe (FIFO), not a regular file", fifo.display()));
}

#[test]
fn open_regular_refuses_a_directory_a_socket_and_a_character_device() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("folder");
    fs::create_dir(&sub).unwrap();
    let socket = dir.path().join("socket");
    let _listener = UnixListener::bind(&socket).unwrap();
    for (path, kind, words) in [
        (sub.as_path(), FileKind::Directory, "is a directory"),
        (socket.as_path(), FileKind::Socket, "is a socket"),
        // Opened for reading only.
        (Path::new("/dev/null"), FileKind::CharDevice, "is a character device"),
    ] {
        let err = fileio::open_regular(path).unwrap_err();
        assert!(matches!(err, FileError::NotRegular { kind: k, .. } if k == kind), "{err}");
        assert!(err.to_string().starts_with(&format!("{} {words}", path.display())), "{err}");
    }
}

#[test]
fn open_regular_reports_a_symlink_loop_as_a_loop_not_as_missing() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    symlink(&b, &a).unwrap();
    symlink(&a, &b).unwrap();
    let err = fileio::open_regular(&a).unwrap_err();
    assert!(matches!(err, FileError::SymlinkLoop { .. }), "{err}");
    assert_eq!(err.to_string(), format!("{}: too many levels of symbolic links (a symlink loop)", a.display()));
}

#[test]
fn open_regular_reports_a_missing_file_or_dangling_link_as_missing_and_follows_good_links() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = fileio::open_regular(&missing).unwrap_err();
    assert_eq!(err.to_string(), format!("{}: no such file", missing.display()));
    let dangling = dir.path().join("dangling");
    symlink(&missing, &dangling).unwrap();
    assert!(matches!(fileio::open_regular(&dangling).unwrap_err(), FileError::Missing { .. }));

    let real = dir.path().join("real");
    fs::write(&real, b"data").unwrap();
    let link = dir.path().join("link");
    symlink("real", &link).unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut fileio::open_regular(&link).unwrap(), &mut text).unwrap();
    assert_eq!(text, "data");
}

// ---------------------------------------------------------------------------------------------
// fileio: writing

#[test]
fn saving_through_a_symlink_replaces_its_target_and_keeps_the_link() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    fs::create_dir(&store).unwrap();
    let target = store.join("model.safetensors");
    fs::write(&target, b"old").unwrap();
    let link = dir.path().join("latest.safetensors");
    symlink("store/model.safetensors", &link).unwrap();

    fileio::write_atomically(&link, b"new contents").unwrap();
    assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link was replaced by a file");
    assert_eq!(fs::read(&target).unwrap(), b"new contents");
    // The temporary file went to the target's folder and is gone.
    assert_eq!(entries(&store), ["model.safetensors"]);
    assert_eq!(entries(dir.path()), ["latest.safetensors", "store"]);

    // A weights file saved through a chain of links lands in the final target too.
    let chain = dir.path().join("chain");
    symlink(&link, &chain).unwrap();
    weights::save(&chain, &Params::init(&small(), Init::He, 1), &small_meta()).unwrap();
    assert!(weights::load(&target, None).is_ok());

    // A dangling link creates its target.
    let dangling = dir.path().join("next.csv");
    symlink("store/next.csv", &dangling).unwrap();
    fileio::write_atomically(&dangling, b"a,b\n").unwrap();
    assert_eq!(fs::read(store.join("next.csv")).unwrap(), b"a,b\n");
    assert!(fs::symlink_metadata(&dangling).unwrap().file_type().is_symlink());
}

#[test]
fn saving_refuses_a_path_that_is_not_a_regular_file_and_leaves_it_alone() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.csv");
    mkfifo(&fifo);
    let folder = dir.path().join("folder.safetensors");
    fs::create_dir(&folder).unwrap();
    let socket = dir.path().join("socket.npz");
    let _listener = UnixListener::bind(&socket).unwrap();
    let link_to_fifo = dir.path().join("link.csv");
    symlink(&fifo, &link_to_fifo).unwrap();
    let mut cases = vec![
        (fifo.clone(), "is a named pipe (FIFO), not a regular file".to_owned()),
        (folder.clone(), "is a directory, not a regular file".to_owned()),
        (socket.clone(), "is a socket, not a regular file".to_owned()),
        (
            link_to_fifo.clone(),
            format!("(a symbolic link to {}) is a named pipe (FIFO), not a regular file", fifo.display()),
        ),
    ];
    let device = dir.path().join("full");
    match char_device(&device) {
        Some(()) => cases.push((device.clone(), "is a character device, not a regular file".to_owned())),
        None => println!("skipping the device node case: mknod is not permitted here"),
    }
    for (path, words) in &cases {
        let err = fileio::write_atomically(path, b"x").unwrap_err();
        assert_eq!(err.to_string(), format!("{} {words}", path.display()));
        let err = weights::save(path, &Params::init(&small(), Init::He, 1), &small_meta()).unwrap_err();
        assert!(matches!(err, WeightsError::File(FileError::NotRegular { .. })), "{err}");
        let err = fileio::check_writable(path).unwrap_err();
        assert!(matches!(err, FileError::NotRegular { .. }), "{err}");
    }
    // Each is still what it was, and no temporary file was left.
    use std::os::unix::fs::FileTypeExt;
    assert!(fs::metadata(&fifo).unwrap().file_type().is_fifo());
    assert!(fs::metadata(&folder).unwrap().is_dir());
    assert!(fs::metadata(&socket).unwrap().file_type().is_socket());
    if cases.len() == 5 {
        assert!(fs::metadata(&device).unwrap().file_type().is_char_device());
    }
    assert!(entries(dir.path()).iter().all(|n| !n.contains(".tmp-")), "{:?}", entries(dir.path()));
}

#[test]
fn a_save_removes_the_temporary_files_of_killed_saves_of_the_same_file_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.safetensors");
    let dead = dead_pid();
    let me = std::process::id();
    let stale = format!(".run.safetensors.tmp-{dead}-3");
    let keep = [
        // A live process's (ours) save may be in progress.
        format!(".run.safetensors.tmp-{me}-999"),
        // Another file's temporaries, and names that only look like ours.
        format!(".other.safetensors.tmp-{dead}-1"),
        format!(".run.safetensors.tmp-{dead}-x"),
        format!("run.safetensors.tmp-{dead}-1"),
    ];
    fs::write(dir.path().join(&stale), vec![0u8; 4096]).unwrap();
    for name in &keep {
        fs::write(dir.path().join(name), b"keep").unwrap();
    }
    fileio::write_atomically(&path, b"saved").unwrap();
    let mut want: Vec<String> = keep.to_vec();
    want.push("run.safetensors".into());
    want.sort();
    assert_eq!(entries(dir.path()), want);
    assert_eq!(fs::read(&path).unwrap(), b"saved");
}

#[test]
fn a_save_keeps_the_permissions_of_the_file_it_replaces() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("private.safetensors");
    fs::write(&path, b"old").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    fileio::write_atomically(&path, b"new").unwrap();
    assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
}

#[test]
fn a_save_into_a_missing_folder_names_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/run.safetensors");
    let err = fileio::write_atomically(&path, b"x").unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}: the folder {} does not exist", path.display(), dir.path().join("no/such").display())
    );
}

// ---------------------------------------------------------------------------------------------
// fileio: checking a save path before a run

#[test]
fn check_writable_accepts_new_and_regular_files_and_links_to_them_leaving_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    fileio::check_writable(&dir.path().join("new.safetensors")).unwrap();
    let existing = dir.path().join("old.safetensors");
    fs::write(&existing, b"old").unwrap();
    fileio::check_writable(&existing).unwrap();
    let link = dir.path().join("link.safetensors");
    symlink(&existing, &link).unwrap();
    fileio::check_writable(&link).unwrap();
    assert_eq!(entries(dir.path()), ["link.safetensors", "old.safetensors"]);
    assert_eq!(fs::read(&existing).unwrap(), b"old");
}

#[test]
fn check_writable_names_a_missing_folder_a_file_in_the_way_a_directory_and_a_loop() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope/run.safetensors");
    let err = fileio::check_writable(&missing).unwrap_err();
    assert!(matches!(err, FileError::FolderMissing { .. }), "{err}");
    assert!(err.to_string().starts_with(&format!("{}: the folder", missing.display())), "{err}");

    let file = dir.path().join("file");
    fs::write(&file, b"").unwrap();
    let under_file = file.join("run.safetensors");
    let err = fileio::check_writable(&under_file).unwrap_err();
    assert_eq!(err.to_string(), format!("{}: {} is not a folder", under_file.display(), file.display()));

    let err = fileio::check_writable(dir.path()).unwrap_err();
    assert!(matches!(err, FileError::NotRegular { kind: FileKind::Directory, .. }), "{err}");

    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    symlink(&b, &a).unwrap();
    symlink(&a, &b).unwrap();
    assert!(matches!(fileio::check_writable(&a).unwrap_err(), FileError::SymlinkLoop { .. }));
}

#[test]
fn check_writable_refuses_a_folder_where_no_file_can_be_created() {
    // Tests run as root, for whom permission bits do not stop a write; /proc and /sys refuse
    // new files even to root.
    for path in ["/proc/cnn-stepper-check.safetensors", "/sys/cnn-stepper-check.safetensors"] {
        let path = Path::new(path);
        if !path.parent().unwrap().is_dir() {
            println!("skipping {}: no such folder here", path.display());
            continue;
        }
        let err = fileio::check_writable(path).unwrap_err();
        assert!(err.to_string().starts_with(&format!("{}: ", path.display())), "{err}");
        assert!(err.to_string().contains("cannot create a file in the folder"), "{err}");
        assert!(!path.exists());
    }
}

// ---------------------------------------------------------------------------------------------
// Weights and session files: what is refused on load

#[test]
fn loading_weights_or_a_session_from_a_named_pipe_is_refused_by_kind() {
    // Before: `eval --weights FIFO` blocked forever.
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("model.safetensors");
    mkfifo(&fifo);
    let err = weights::load(&fifo, None).unwrap_err();
    assert!(err.to_string().contains("is a named pipe"), "{err}");
    let err = checkpoint::load(&fifo, None, ConvEngine::Fast, None).unwrap_err();
    assert!(err.to_string().contains("is a named pipe"), "{err}");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    symlink(&b, &a).unwrap();
    symlink(&a, &b).unwrap();
    let err = weights::load(&a, None).unwrap_err();
    assert!(err.to_string().contains("symbolic links"), "{err}");
}

#[test]
fn a_huge_file_of_zeros_is_refused_from_its_first_8_bytes() {
    // A sparse terabyte: reading it whole, as before, fails to allocate (or takes forever).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zeros.safetensors");
    fs::File::create(&path).unwrap().set_len(1 << 40).unwrap();
    let err = weights::load(&path, None).unwrap_err();
    assert!(matches!(err, WeightsError::Header { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "{}: not a valid safetensors file: the first 8 bytes give a header length of 0 bytes, too short for a JSON header",
            path.display()
        )
    );
}

#[test]
fn a_header_that_does_not_account_for_the_file_is_refused_before_the_data_is_read() {
    let dir = tempfile::tempdir().unwrap();
    // A good file followed by a sparse terabyte: the header's tensors end long before.
    let path = dir.path().join("padded.safetensors");
    let good = weights_file();
    fs::write(&path, &good).unwrap();
    fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(1 << 40).unwrap();
    let err = weights::load(&path, None).unwrap_err();
    let extra = (1u64 << 40) - good.len() as u64;
    assert!(matches!(err, WeightsError::Header { .. }), "{err}");
    assert!(err.to_string().contains(&format!("{extra} bytes follow the end of the last tensor's data")), "{err}");

    // A length field larger than the file.
    let mut long = good.clone();
    long[..8].copy_from_slice(&(good.len() as u64).to_le_bytes());
    let err = weights::from_bytes(&long, "long.safetensors", None).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "long.safetensors: not a valid safetensors file: the first 8 bytes give a header length of {} bytes, but only {} bytes follow",
            good.len(),
            good.len() - 8
        )
    );
}

#[test]
fn a_tensor_whose_offsets_do_not_fit_is_named_with_its_shape_and_offsets() {
    // Before: "invalid shape, data type, or offset for tensor", naming none.
    let data = [0u8; 20];
    let cases = [
        (
            r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[3],"data_offsets":[8,24]}}"#,
            &data[..],
            "tensor \"b\" is F32 [3], which takes 12 bytes, but its data offsets [8, 24] span 16 bytes",
        ),
        (
            r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}}"#,
            &data[..],
            "tensor \"b\" starts at byte 12 of the data, but the tensor before it, \"a\", ends at byte 8",
        ),
        (
            r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
            &data[..12],
            "tensor \"a\" starts at byte 4 of the data, but the first tensor must start at byte 0",
        ),
        (
            r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[3],"data_offsets":[8,20]}}"#,
            &data[..16],
            "tensor \"b\" ends at byte 20 of the data, but the file holds only 16 bytes of tensor data: it is cut short",
        ),
        (
            r#"{"a":{"dtype":"F36","shape":[2],"data_offsets":[0,8]}}"#,
            &data[..8],
            "tensor \"a\" has an unreadable entry in the header",
        ),
    ];
    for (header, data, want) in cases {
        let err = weights::from_bytes(&raw_file(header, data), "m.safetensors", None).unwrap_err();
        assert!(matches!(err, WeightsError::Layout { .. }), "{err}");
        assert!(err.to_string().starts_with(&format!("m.safetensors: {want}")), "{err}");
    }
}

#[test]
fn a_flipped_bit_in_any_tensor_or_metadata_value_is_refused_naming_it() {
    // Before: 21 of 40 damaged session files evaluated without a warning, and damaged
    // metadata (lr 0.01 read as 7.01) was taken on resume.
    for (what, good) in [("weights", weights_file()), ("session", session_file())] {
        let (meta, tensors) = layout(&good);
        assert!(tensors.len() >= 8);
        for (tensor, range) in &tensors {
            if range.is_empty() {
                continue;
            }
            let mut bytes = good.clone();
            bytes[range.start + range.len() / 2] ^= 0x10;
            let err = open_session(&bytes).unwrap_err();
            assert!(
                matches!(&err, CheckpointError::Weights(WeightsError::Checksum { item, .. }) if *item == format!("tensor {tensor:?}")),
                "{what} {tensor}: {err}"
            );
            assert!(err.to_string().ends_with("the file is damaged"), "{err}");
            assert!(weights::from_bytes(&bytes, "w", None).is_err(), "{what} {tensor}");
        }
        for key in meta.keys().filter(|k| *k != "checksums") {
            let mut bytes = good.clone();
            flip_metadata_value(&mut bytes, key);
            let err = open_session(&bytes).unwrap_err();
            assert!(
                matches!(&err, CheckpointError::Weights(WeightsError::Checksum { item, .. }) if *item == format!("metadata {key:?}")),
                "{what} {key}: {err}"
            );
        }
    }
}

#[test]
fn a_flipped_bit_in_a_metadata_key_refuses_the_session_instead_of_starting_over() {
    // Before: "session_format" with one flipped bit made `--resume` load plain weights and
    // start again at step 0.
    let good = session_file();
    for bytes in [good.clone(), without_checksums(&good, |_| {})] {
        let mut bytes = bytes;
        edit_header(&mut bytes, "\"session_format\"", "\"session_formaT\"");
        let err = open_session(&bytes).unwrap_err();
        assert!(err.to_string().contains("\"session_formaT\""), "{err}");
        assert!(err.to_string().contains("damaged key name"), "{err}");
    }
}

#[test]
fn a_file_with_session_data_but_no_session_format_is_refused_not_downgraded() {
    let good = session_file();
    let no_format = without_checksums(&good, |m| {
        m.remove("session_format");
    });
    let err = open_session(&no_format).unwrap_err();
    assert_eq!(
        err.to_string(),
        "s.safetensors: the file has session data (metadata \"session\") but no \"session_format\" entry, so it is \
         damaged; it is not loaded as plain weights, which would start over at step 0"
    );
    let only_tensors = without_checksums(&good, |m| {
        m.remove("session_format");
        m.remove("session");
    });
    let err = open_session(&only_tensors).unwrap_err();
    assert!(err.to_string().contains("session data (tensor \"session."), "{err}");
}

#[test]
fn nan_or_infinite_weights_and_momentum_are_refused_naming_the_tensor() {
    // Before: eval printed 9.74% and export wrote them; resume blamed the learning rate.
    let mut params = Params::init(&small(), Init::He, 3);
    params.fc1_w.as_slice_mut().unwrap()[3] = f32::NAN;
    params.fc1_w.as_slice_mut().unwrap()[7] = f32::INFINITY;
    let bytes = weights::to_bytes(&params, &small_meta()).unwrap();
    let err = weights::from_bytes(&bytes, "nan.safetensors", None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "nan.safetensors: tensor \"fc1.weight\" holds 2 values that are not a finite number (the first, NaN, at index 3)"
    );

    let mut file = tiny_session().to_file().unwrap();
    // conv2's bias: the tensor of layer 2 (its position in the line).
    let at = file.tensors.iter().position(|t| t.name == "2.bias").unwrap();
    file.momentum[at][1] = f32::NEG_INFINITY;
    let err = open_session(&file.to_bytes("s").unwrap()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "s.safetensors: tensor \"session.velocity.2.bias\" holds 1 value that is not a finite number (the first, -inf, at index 1)"
    );
}

#[test]
fn identical_sessions_give_identical_bytes_with_sorted_metadata() {
    // Before: the metadata went through a HashMap, in a different order each time.
    let (a, b) = (session_file(), session_file());
    assert!(a == b, "two identical sessions were written differently");
    let header = String::from_utf8(a[8..header_end(&a)].to_vec()).unwrap();
    let (meta, _) = layout(&a);
    let mut keys: Vec<&String> = meta.keys().collect();
    keys.sort();
    let positions: Vec<usize> = keys.iter().map(|k| header.find(&format!("\"{k}\":")).unwrap()).collect();
    assert!(positions.is_sorted(), "metadata keys out of order in {header}");
}

#[test]
fn files_without_checksums_still_load_and_say_they_were_not_checked() {
    // Ours, as saved before checksums existed.
    let old = without_checksums(&weights_file(), |_| {});
    let loaded = weights::from_bytes(&old, "old.safetensors", None).unwrap();
    assert_eq!(loaded.integrity, Integrity::Unchecked);
    assert_eq!(loaded.meta, small_meta());
    let note = loaded.integrity.note("old.safetensors").unwrap();
    assert!(note.starts_with("old.safetensors: the file has no checksums"), "{note}");
    let old_session = without_checksums(&session_file(), |_| {});
    let opened = open_session(&old_session).unwrap();
    assert!(!opened.weights_only);
    assert_eq!(opened.integrity, Integrity::Unchecked);

    // PyTorch's.
    let torch = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/torch_small.safetensors");
    assert_eq!(weights::load(&torch, None).unwrap().integrity, Integrity::Unchecked);

    // Ours, now: checked, and nothing to say.
    let new = weights::from_bytes(&weights_file(), "new", None).unwrap();
    assert_eq!(new.integrity, Integrity::Verified);
    assert_eq!(new.integrity.note("new"), None);
    assert_eq!(open_session(&session_file()).unwrap().integrity, Integrity::Verified);
}

#[test]
fn a_checksum_table_that_does_not_cover_the_file_is_refused() {
    let good = weights_file();
    // A tensor renamed in the header (one flipped bit) has no checksum.
    let mut renamed = good.clone();
    edit_header(&mut renamed, "\"fc2.bias\":{", "\"fc2.biar\":{");
    let err = weights::from_bytes(&renamed, "w", None).unwrap_err();
    assert!(matches!(err, WeightsError::Damaged { .. }), "{err}");
    assert!(err.to_string().contains("tensor \"fc2.biar\" has no checksum"), "{err}");
    // A damaged checksum table names what it cannot check.
    let (meta, _) = layout(&good);
    let first_tensor_sum = &meta["checksums"][meta["checksums"].find("\"tensors\":{").unwrap()..];
    assert!(first_tensor_sum.starts_with("\"tensors\":{\"conv1.bias\""), "{first_tensor_sum}");
    let mut table = good.clone();
    flip_first_hex_of_tensor_sum(&mut table, "conv1.bias");
    let err = weights::from_bytes(&table, "w", None).unwrap_err();
    assert!(err.to_string().contains("tensor \"conv1.bias\""), "{err}");
}

/// Flips bit 0 of the first hex digit of `tensor`'s checksum in the (JSON-escaped) table.
fn flip_first_hex_of_tensor_sum(bytes: &mut [u8], tensor: &str) {
    let end = header_end(bytes);
    let needle = format!("\\\"{tensor}\\\":\\\"");
    let header = &bytes[8..end];
    let tensors_at = header.windows(11).position(|w| w == b"\\\"tensors\\\"").unwrap();
    let at = tensors_at + header[tensors_at..].windows(needle.len()).position(|w| w == needle.as_bytes()).unwrap();
    // Hex digits 0-9a-f with bit 0 flipped stay hex digits.
    bytes[8 + at + needle.len()] ^= 1;
}

// ---------------------------------------------------------------------------------------------
// Dataset folders

const N: usize = 3;

fn idx_images(count: u32, pixels: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for word in [IMAGES_MAGIC, count, 28, 28] {
        out.extend_from_slice(&word.to_be_bytes());
    }
    out.extend_from_slice(pixels);
    out
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut out = LABELS_MAGIC.to_be_bytes().to_vec();
    out.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    out.extend_from_slice(labels);
    out
}

fn images(n: usize, seed: usize) -> Vec<u8> {
    idx_images(n as u32, &(0..n * 784).map(|i| ((i * 7 + seed) % 256) as u8).collect::<Vec<_>>())
}

fn labels(n: usize) -> Vec<u8> {
    idx_labels(&(0..n).map(|i| (i % 10) as u8).collect::<Vec<_>>())
}

/// A folder with the four raw files, `N` images per split.
fn folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (file, bytes) in [
        ("train-images-idx3-ubyte", images(N, 0)),
        ("train-labels-idx1-ubyte", labels(N)),
        ("t10k-images-idx3-ubyte", images(N, 1)),
        ("t10k-labels-idx1-ubyte", labels(N)),
    ] {
        fs::write(dir.path().join(file), bytes).unwrap();
    }
    dir
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

#[test]
fn a_data_file_that_is_a_named_pipe_or_a_symlink_loop_is_named_not_missing() {
    // Before: both were reported as "missing".
    let dir = folder();
    let images = dir.path().join("train-images-idx3-ubyte");
    fs::remove_file(&images).unwrap();
    mkfifo(&images);
    let err = data::load_dir(dir.path(), None).unwrap_err();
    assert!(matches!(err, DataError::File(FileError::NotRegular { kind: FileKind::NamedPipe, .. })), "{err}");
    assert_eq!(err.to_string(), format!("{} is a named pipe (FIFO), not a regular file", images.display()));

    let dir = folder();
    let labels = dir.path().join("t10k-labels-idx1-ubyte");
    fs::remove_file(&labels).unwrap();
    let other = dir.path().join("loop");
    symlink(&other, &labels).unwrap();
    symlink(&labels, &other).unwrap();
    let err = data::load_dir(dir.path(), None).unwrap_err();
    assert_eq!(err.to_string(), format!("{}: too many levels of symbolic links (a symlink loop)", labels.display()));
}

#[test]
fn an_empty_training_or_test_split_is_refused_naming_the_file() {
    // Before: "a batch needs at least one image", naming nothing.
    for (split, images_file, labels_file) in [
        ("training", "train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        ("test", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    ] {
        let dir = folder();
        fs::write(dir.path().join(images_file), idx_images(0, &[])).unwrap();
        fs::write(dir.path().join(labels_file), idx_labels(&[])).unwrap();
        let err = data::load_dir(dir.path(), None).unwrap_err();
        assert!(matches!(err, DataError::EmptySplit { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            format!(
                "{}: the file holds no images, but the {split} set needs at least one",
                dir.path().join(images_file).display()
            )
        );
    }
}

#[test]
fn the_test_split_loads_without_the_training_files() {
    // Before: `eval --data` refused a folder over a training labels file it does not use.
    let dir = folder();
    fs::write(dir.path().join("train-labels-idx1-ubyte"), b"damaged").unwrap();
    assert!(data::load_dir(dir.path(), None).is_err());
    let test = data::load_test_dir(dir.path(), None).unwrap();
    assert_eq!(test.len(), N);
    assert_eq!(test.images, images(N, 1)[16..]);

    fs::remove_file(dir.path().join("train-images-idx3-ubyte")).unwrap();
    fs::remove_file(dir.path().join("train-labels-idx1-ubyte")).unwrap();
    assert_eq!(data::load_test_dir(dir.path(), None).unwrap().len(), N);
    // Its own files are still checked.
    fs::write(dir.path().join("t10k-labels-idx1-ubyte"), labels(N + 1)).unwrap();
    assert!(matches!(data::load_test_dir(dir.path(), None).unwrap_err(), DataError::CountMismatch { .. }));
}

#[test]
fn raw_and_gzip_copies_that_differ_are_refused_naming_both() {
    // Before: the raw file was taken without a word.
    let dir = folder();
    let raw = dir.path().join("train-images-idx3-ubyte");
    let packed = dir.path().join("train-images-idx3-ubyte.gz");
    fs::write(&packed, gz(&images(N, 5))).unwrap();
    let err = data::load_dir(dir.path(), None).unwrap_err();
    assert!(matches!(err, DataError::Ambiguous { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "{} and {} are both present and hold different data: remove the one you do not mean",
            raw.display(),
            packed.display()
        )
    );
    // The same data in both is no ambiguity.
    fs::write(&packed, gz(&images(N, 0))).unwrap();
    assert_eq!(data::load_dir(dir.path(), None).unwrap().train.images, images(N, 0)[16..]);
    // Nor is one of them alone.
    fs::remove_file(&raw).unwrap();
    assert_eq!(data::load_dir(dir.path(), None).unwrap().train.len(), N);
}

#[test]
fn a_raw_idx_file_is_judged_by_its_size_before_its_data_is_read() {
    // A header for 3 images followed by a sparse terabyte: the surplus is known exactly from
    // the file's size, without reading it (before, reading stopped at "at least 1 MiB").
    let dir = folder();
    let path = dir.path().join("train-images-idx3-ubyte");
    fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(1 << 40).unwrap();
    let err = data::load_dir(dir.path(), None).unwrap_err();
    let extra = (1u64 << 40) - 16 - (N as u64) * 784;
    match &err {
        DataError::TrailingBytes { extra_bytes, at_least, .. } => {
            assert_eq!((*extra_bytes, *at_least), (extra, false), "{err}");
        }
        other => panic!("{other}"),
    }

    // And one that promises more than it holds.
    let short = images(N, 0);
    fs::write(&path, &short[..short.len() - 1]).unwrap();
    let err = data::load_dir(dir.path(), None).unwrap_err();
    assert!(matches!(err, DataError::Truncated { actual_bytes, .. } if actual_bytes == (N as u64) * 784 - 1), "{err}");
}

#[test]
fn the_sample_folder_loads_with_all_its_spellings_identical() {
    // Raw and .gz copies with the same data, as `gunzip -k` leaves them, load as before.
    let dir = folder();
    for file in
        ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    {
        let bytes = fs::read(dir.path().join(file)).unwrap();
        fs::write(dir.path().join(format!("{file}.gz")), gz(&bytes)).unwrap();
    }
    let mnist = data::load_dir(dir.path(), None).unwrap();
    assert_eq!((mnist.train.len(), mnist.test.len()), (N, N));
}
