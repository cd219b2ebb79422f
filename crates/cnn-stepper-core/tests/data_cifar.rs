//! CIFAR-10 binary folders: the record layout, class names, notes, recognition, and every
//! kind of bad folder, each refused with a message naming the file.

// clippy.toml allows unwrap in `#[test]` functions only; the helpers here are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::Path;
use std::sync::Mutex;

use cnn_stepper_core::cli;
use cnn_stepper_core::data::{
    self, CIFAR_CLASSES, CIFAR_RECORD_BYTES, DataError, DataKind, DataSource, LoadOptions, LoadProgress, Splits,
};
use proptest::prelude::*;

const PLANE: usize = 32 * 32;

/// One record: the label byte, then R, G and B planes; pixel (c, r, col) is `pixel(i, c, r, col)`.
fn record(label: u8, i: usize) -> Vec<u8> {
    let mut out = vec![label];
    for c in 0..3 {
        for r in 0..32 {
            for col in 0..32 {
                out.push(((i * 31 + c * 7 + r * 3 + col) % 251) as u8);
            }
        }
    }
    out
}

/// A batch of `labels.len()` records; `first` numbers the first image for the pixel pattern.
fn batch(labels: &[u8], first: usize) -> Vec<u8> {
    labels.iter().enumerate().flat_map(|(k, &l)| record(l, first + k)).collect()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    fs::write(dir.join(name), bytes).unwrap();
}

/// A folder with `train` training batches of 3 records each and a test batch of 2.
fn folder(train: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for b in 0..train {
        write(dir.path(), &format!("data_batch_{}.bin", b + 1), &batch(&[1, 2, 3], b * 3));
    }
    write(dir.path(), "test_batch.bin", &batch(&[9, 0], 100));
    dir
}

fn load(dir: &Path) -> Result<Splits, DataError> {
    data::load(&DataSource::Folder(dir.to_path_buf()), &LoadOptions::default(), &|_| {})
}

fn load_err(dir: &Path) -> String {
    load(dir).map(|s| s.source).unwrap_err().to_string()
}

#[test]
fn a_cifar_folder_is_three_by_thirty_two_by_thirty_two_colour_with_cifars_names() {
    let dir = folder(5);
    let s = load(dir.path()).unwrap();
    assert_eq!(s.input_shape(), (3, 32, 32));
    assert!(s.train.is_colour());
    assert_eq!((s.train.len(), s.test.len()), (15, 2));
    assert_eq!(s.class_names(), CIFAR_CLASSES.map(String::from));
    assert_eq!(s.test.labels, [9, 0]);
    assert!(s.notes.is_empty(), "all five batches: nothing to say, got {:?}", s.notes);
    assert_eq!(s.source, dir.path().display().to_string());
}

#[test]
fn a_record_is_copied_as_channel_row_column() {
    let dir = tempfile::tempdir().unwrap();
    let mut second = vec![0u8; CIFAR_RECORD_BYTES];
    second[0] = 4;
    // Green (channel 1), row 5, column 17, and the last blue pixel.
    second[1 + PLANE + 5 * 32 + 17] = 200;
    second[CIFAR_RECORD_BYTES - 1] = 77;
    let mut bytes = record(3, 0);
    bytes.extend_from_slice(&second);
    write(dir.path(), "data_batch_1.bin", &bytes);
    write(dir.path(), "test_batch.bin", &record(0, 1));
    let s = load(dir.path()).unwrap();
    assert_eq!(s.train.labels, [3, 4]);
    assert_eq!(s.train.image(0), &record(3, 0)[1..]);
    let image = s.train.image(1);
    assert_eq!(image[PLANE + 5 * 32 + 17], 200);
    assert_eq!(image[3 * PLANE - 1], 77);
    assert_eq!(image.iter().filter(|&&b| b != 0).count(), 2);
    // And in the batch the network sees: N × C × H × W floats.
    let b = s.train.batch(&[1]).unwrap();
    assert_eq!(b.images.shape(), &[1, 3, 32, 32]);
    assert!((b.images[[0, 1, 5, 17]] - 200.0 / 255.0).abs() < 1e-6);
    assert!((b.images[[0, 2, 31, 31]] - 77.0 / 255.0).abs() < 1e-6);
    assert_eq!(b.images[[0, 0, 5, 17]], 0.0);
}

#[test]
fn training_batches_are_read_in_order_and_a_note_says_which_are_missing() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "data_batch_3.bin", &batch(&[7, 7], 30));
    write(dir.path(), "data_batch_1.bin", &batch(&[1, 2, 3], 10));
    write(dir.path(), "test_batch.bin", &batch(&[0], 0));
    let s = load(dir.path()).unwrap();
    assert_eq!(s.train.labels, [1, 2, 3, 7, 7]);
    assert_eq!(s.train.image(3), &record(7, 30)[1..]);
    assert_eq!(s.notes.len(), 1, "{:?}", s.notes);
    let note = &s.notes[0];
    assert!(note.contains("2 of the 5 training batches"), "{note}");
    assert!(note.contains("data_batch_1.bin, data_batch_3.bin"), "{note}");
    assert!(note.contains("5 training images"), "{note}");
}

#[test]
fn batches_meta_names_the_classes_one_per_non_empty_line() {
    let dir = folder(1);
    write(
        dir.path(),
        "batches.meta.txt",
        b"\xef\xbb\xbfplane\r\ncar\r\n\r\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n",
    );
    let s = load(dir.path()).unwrap();
    assert_eq!(s.class_names()[..3], ["plane", "car", "bird"]);
    assert_eq!(s.class_names().len(), 10);
}

#[test]
fn batches_meta_may_name_more_classes_than_the_labels_use() {
    let dir = folder(1);
    let names: String = (0..12).map(|i| format!("class {i}\n")).collect();
    write(dir.path(), "batches.meta.txt", names.as_bytes());
    let s = load(dir.path()).unwrap();
    assert_eq!(s.class_names().len(), 12);
    assert_eq!(s.test.num_classes(), 12);
}

#[test]
fn the_archives_folder_is_read_when_its_parent_is_named() {
    let parent = tempfile::tempdir().unwrap();
    let inner = parent.path().join("cifar-10-batches-bin");
    fs::create_dir(&inner).unwrap();
    for (name, bytes) in [("data_batch_1.bin", batch(&[5], 0)), ("test_batch.bin", batch(&[6], 1))] {
        write(&inner, name, &bytes);
    }
    assert_eq!(data::kind_of(parent.path()).unwrap(), DataKind::Cifar);
    let s = load(parent.path()).unwrap();
    assert_eq!(s.train.labels, [5]);
    assert_eq!(s.source, inner.display().to_string());
    assert!(s.notes.iter().any(|n| n.contains("cifar-10-batches-bin")), "{:?}", s.notes);
}

#[test]
fn progress_counts_images_up_to_the_total() {
    let dir = folder(2);
    let seen = Mutex::new(Vec::new());
    let record = |p: LoadProgress| seen.lock().unwrap().push(p);
    data::load(&DataSource::Folder(dir.path().to_path_buf()), &LoadOptions::default(), &record).unwrap();
    let seen = seen.into_inner().unwrap();
    assert_eq!(seen.first(), Some(&LoadProgress { done: 0, total: 8 }));
    assert_eq!(seen.last(), Some(&LoadProgress { done: 8, total: 8 }));
    assert!(seen.windows(2).all(|w| w[0].done <= w[1].done), "{seen:?}");
}

// ---------------------------------------------------------------------------------------------
// Recognition.

#[test]
fn kind_of_recognises_a_training_or_a_test_batch() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "data_batch_1.bin", &batch(&[1], 0));
    assert_eq!(data::kind_of(dir.path()).unwrap(), DataKind::Cifar);
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "test_batch.bin", &batch(&[1], 0));
    assert_eq!(data::kind_of(dir.path()).unwrap(), DataKind::Cifar);
    assert_eq!(DataKind::Cifar.describe(), "CIFAR-10 binary batches");
}

#[test]
fn a_folder_of_other_files_is_unknown_and_the_message_names_cifar() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "batches.meta.txt", b"a\nb\n");
    write(dir.path(), "data_batch_1.txt", b"not a batch");
    let e = data::kind_of(dir.path()).unwrap_err();
    assert!(matches!(e, DataError::UnknownDataKind { .. }), "{e:?}");
    let message = e.to_string();
    assert!(message.contains("data_batch_1.bin") && message.contains("test_batch.bin"), "{message}");
}

// ---------------------------------------------------------------------------------------------
// Bad folders: each its own message, naming the file.

#[test]
fn a_batch_that_is_not_whole_records_says_its_size_and_what_is_over() {
    let dir = folder(1);
    let mut bytes = batch(&[1, 2], 0);
    bytes.extend_from_slice(&[0; 100]);
    write(dir.path(), "data_batch_1.bin", &bytes);
    let e = load(dir.path()).unwrap_err();
    assert!(matches!(e, DataError::CifarRecordSize { bytes: 6246, records: 2, .. }), "{e:?}");
    let m = e.to_string();
    assert!(m.contains("data_batch_1.bin"), "{m}");
    assert!(
        m.contains("6,246 bytes") && m.contains("3,073-byte") && m.contains("100 bytes left over after 2 records"),
        "{m}"
    );
}

#[test]
fn a_batch_cut_inside_its_first_record_is_not_whole_records() {
    let dir = folder(1);
    write(dir.path(), "test_batch.bin", &record(1, 0)[..1000]);
    let m = load_err(dir.path());
    assert!(m.contains("test_batch.bin") && m.contains("1,000 bytes") && m.contains("shorter than one record"), "{m}");
}

#[test]
fn an_empty_batch_is_refused_by_name() {
    let dir = folder(2);
    write(dir.path(), "data_batch_2.bin", b"");
    let e = load(dir.path()).unwrap_err();
    assert!(matches!(e, DataError::Empty { ref name } if name.ends_with("data_batch_2.bin")), "{e:?}");
    assert!(e.to_string().contains("data_batch_2.bin: the file is empty"), "{e}");
}

#[test]
fn a_label_beyond_cifars_ten_classes_names_the_file_and_the_record() {
    let dir = folder(2);
    write(dir.path(), "data_batch_2.bin", &batch(&[0, 1, 2, 3, 12, 4], 0));
    let e = load(dir.path()).unwrap_err();
    assert!(matches!(e, DataError::CifarLabel { record: 4, label: 12, num_classes: 10, .. }), "{e:?}");
    let m = e.to_string();
    assert!(m.contains("data_batch_2.bin") && m.contains("record 4") && m.contains("label 12"), "{m}");
    assert!(m.contains("batches.meta.txt"), "says where more names would go: {m}");
}

#[test]
fn a_meta_file_with_too_few_names_names_it_and_where_the_label_is() {
    let dir = folder(1);
    write(dir.path(), "batches.meta.txt", b"cat\ndog\nbird\n");
    let e = load(dir.path()).unwrap_err();
    assert!(matches!(e, DataError::CifarClassNames { found: 3, needed: 10, .. }), "{e:?}");
    let m = e.to_string();
    assert!(m.contains("batches.meta.txt") && m.contains("found 3 class names"), "{m}");
    // The test batch's record 0 has label 9.
    assert!(m.contains("label 9 is in record 0 of") && m.contains("test_batch.bin"), "{m}");
}

#[test]
fn a_meta_file_with_one_name_is_too_few() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "data_batch_1.bin", &batch(&[0], 0));
    write(dir.path(), "test_batch.bin", &batch(&[0], 0));
    write(dir.path(), "batches.meta.txt", b"only\n\n");
    let e = load(dir.path()).unwrap_err();
    assert!(matches!(e, DataError::CifarClassNames { found: 1, needed: 2, .. }), "{e:?}");
}

#[test]
fn a_meta_file_with_more_names_than_a_byte_counts_is_refused() {
    let dir = folder(1);
    let names: String = (0..300).map(|i| format!("c{i}\n")).collect();
    write(dir.path(), "batches.meta.txt", names.as_bytes());
    let m = load_err(dir.path());
    assert!(m.contains("batches.meta.txt") && m.contains("300 class names") && m.contains("256"), "{m}");
}

#[test]
fn a_test_batch_without_training_batches_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "test_batch.bin", &batch(&[1], 0));
    let e = load(dir.path()).unwrap_err();
    assert!(matches!(e, DataError::CifarSplitMissing { split: "training", .. }), "{e:?}");
    let m = e.to_string();
    assert!(m.contains(&dir.path().display().to_string()), "{m}");
    assert!(m.contains("test_batch.bin but no data_batch_1.bin"), "{m}");
}

#[test]
fn training_batches_without_a_test_batch_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "data_batch_1.bin", &batch(&[1], 0));
    write(dir.path(), "data_batch_2.bin", &batch(&[1], 0));
    let e = load(dir.path()).unwrap_err();
    assert!(matches!(e, DataError::CifarSplitMissing { split: "test", .. }), "{e:?}");
    let m = e.to_string();
    assert!(m.contains("data_batch_1.bin, data_batch_2.bin but no test_batch.bin"), "{m}");
}

#[test]
fn a_batch_that_is_a_folder_is_refused_by_name() {
    let dir = folder(1);
    fs::create_dir(dir.path().join("data_batch_2.bin")).unwrap();
    let e = load(dir.path()).unwrap_err();
    assert!(matches!(e, DataError::File(_)), "{e:?}");
    let m = e.to_string();
    assert!(m.contains("data_batch_2.bin") && m.contains("a directory"), "{m}");
}

#[cfg(unix)]
#[test]
fn a_test_batch_that_is_a_dangling_link_is_refused_by_name_not_called_missing() {
    let dir = folder(1);
    fs::remove_file(dir.path().join("test_batch.bin")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("gone.bin"), dir.path().join("test_batch.bin")).unwrap();
    let m = load_err(dir.path());
    assert!(m.contains("test_batch.bin: no such file"), "{m}");
}

#[cfg(unix)]
#[test]
fn a_batch_that_is_a_named_pipe_is_refused_without_blocking() {
    let dir = folder(1);
    let pipe = dir.path().join("data_batch_2.bin");
    let status = std::process::Command::new("mkfifo").arg(&pipe).status();
    if !matches!(status, Ok(s) if s.success()) {
        eprintln!("mkfifo unavailable: skipped");
        return;
    }
    let m = load_err(dir.path());
    assert!(m.contains("data_batch_2.bin") && m.contains("named pipe"), "{m}");
}

// ---------------------------------------------------------------------------------------------
// Damaged files: an error or a dataset, never a panic or a hang.

/// Loads a folder whose training batch is `bytes`; every error must name a file of the folder.
fn load_damaged(bytes: &[u8]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "data_batch_1.bin", bytes);
    write(dir.path(), "test_batch.bin", &batch(&[3], 0));
    match load(dir.path()) {
        Ok(s) => {
            prop_assert_eq!(s.train.len() * CIFAR_RECORD_BYTES, bytes.len());
            prop_assert!(s.train.labels.iter().all(|&l| l < 10));
        }
        Err(e) => {
            let m = e.to_string();
            prop_assert!(m.contains("data_batch_1.bin"), "{}", m);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn random_bytes_are_an_error_or_a_dataset(bytes in prop::collection::vec(any::<u8>(), 0..8000)) {
        load_damaged(&bytes)?;
    }

    #[test]
    fn a_truncated_batch_is_an_error_or_fewer_records(cut in 0usize..3 * CIFAR_RECORD_BYTES) {
        load_damaged(&batch(&[1, 2, 3], 0)[..cut])?;
    }

    #[test]
    fn a_bit_flipped_batch_is_an_error_or_a_dataset(flips in prop::collection::vec((0usize..2 * CIFAR_RECORD_BYTES, 0u8..8), 1..6)) {
        let mut bytes = batch(&[4, 5], 0);
        for (at, bit) in flips {
            bytes[at] ^= 1 << bit;
        }
        load_damaged(&bytes)?;
    }
}

#[test]
fn a_network_trained_on_a_cifar_folder_is_evaluated_on_its_test_batch() {
    let dir = folder(2);
    let save = dir.path().join("w.safetensors");
    let o = cli::TrainOptions {
        data: Some(dir.path().to_path_buf()),
        model: Some("conv(4,5), relu, maxpool(2), flatten, fc(10)".into()),
        batch: Some(3),
        save: Some(save.clone()),
        ..cli::TrainOptions::default()
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut console = cli::Console { out: &mut out, err: &mut err, progress: false };
    cli::train(&o, &cli::StopFlag::new(), &mut console).unwrap();
    let csv = dir.path().join("eval.csv");
    let mut report = Vec::new();
    cli::eval_model(&save, None, Some(dir.path()), &LoadOptions::default(), Some(&csv), &mut report).unwrap();
    let report = String::from_utf8(report).unwrap();
    assert!(report.contains("(") && report.contains("/2)"), "the two test records are evaluated: {report}");
    let rows = fs::read_to_string(&csv).unwrap();
    assert!(rows.lines().nth(1).unwrap().contains("truck"), "the first test label (9) is named: {rows}");
}
