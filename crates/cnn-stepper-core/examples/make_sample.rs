//! Builds the embedded MNIST sample in `assets/mnist-sample/` from a full MNIST folder, and
//! reports how long loading the full folder takes.
//!
//! ```text
//! cargo run -p cnn-stepper-core --example make_sample -- /path/to/mnist crates/cnn-stepper-core/assets/mnist-sample
//! ```
//!
//! Both arguments are optional: the source defaults to `../shared/data/mnist` beside the repository and the output to
//! `assets/mnist-sample`, both relative to the crate root. The output is byte-identical on every
//! run (gzip header with mtime 0, no file name, best compression), so `SHA256SUMS` stays valid.
//! The timing step opens the original `train-*-idx?-ubyte.gz` names directly; the sample itself
//! is built through `load_dir`, which accepts every spelling.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use cnn_stepper_core::data::{self, ClassNames, DataError, Dataset, MNIST_SIDE, NUM_CLASSES};
use flate2::{Compression, GzBuilder};

/// How many training images the sample keeps (the first ones, in file order).
const TRAIN_KEEP: usize = 10_000;
/// How often to time loading the training split.
const REPEATS: usize = 3;

fn main() -> ExitCode {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut args = std::env::args_os().skip(1);
    let source = args.next().map_or_else(|| root.join("../../../shared/data/mnist"), PathBuf::from);
    let out = args.next().map_or_else(|| root.join("assets/mnist-sample"), PathBuf::from);
    match run(&source, &out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("make_sample: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(source: &Path, out: &Path) -> Result<(), DataError> {
    // Time the training split on its own (the number asked for), a few times because the first
    // read also pays for the page cache and fresh allocations; then the whole folder.
    let mut times = Vec::new();
    for _ in 0..REPEATS {
        let start = Instant::now();
        let images = data::read_images(
            BufReader::new(open(&source.join("train-images-idx3-ubyte.gz"))?),
            "train-images-idx3-ubyte.gz",
            MNIST_SIDE,
            MNIST_SIDE,
        )?;
        let labels = data::read_labels(
            BufReader::new(open(&source.join("train-labels-idx1-ubyte.gz"))?),
            "train-labels-idx1-ubyte.gz",
            NUM_CLASSES,
        )?;
        let secs = start.elapsed().as_secs_f64();
        println!(
            "training split ({} images + {} labels) from {}: {secs:.3} s",
            images.count,
            labels.len(),
            source.display()
        );
        times.push(secs);
    }
    let best = times.iter().copied().fold(f64::INFINITY, f64::min);
    println!("training split load time: best {best:.3} s of {REPEATS}");

    let start = Instant::now();
    let mnist = data::load_dir(source, Some(ClassNames::Digits))?;
    println!(
        "load_dir({}): {} train + {} test in {:.3} s",
        source.display(),
        mnist.train.len(),
        mnist.test.len(),
        start.elapsed().as_secs_f64()
    );

    let keep = TRAIN_KEEP.min(mnist.train.len());
    let image_len = mnist.train.image_len();
    std::fs::create_dir_all(out).map_err(|source| io_err(out, source))?;
    write_split(out, "train", &mnist.train, keep, image_len)?;
    write_split(out, "t10k", &mnist.test, mnist.test.len(), image_len)?;

    // Read the result back with the crate's own reader so a broken sample never gets committed.
    let check = data::load_dir(out, Some(ClassNames::Digits))?;
    let same = check.train.images == mnist.train.images[..keep * image_len]
        && check.train.labels == mnist.train.labels[..keep]
        && check.test == mnist.test;
    if !same {
        return Err(DataError::InconsistentDataset {
            reason: format!("{} does not read back as written", out.display()),
        });
    }
    println!(
        "wrote {} ({keep} train / {} test); now run: (cd {} && sha256sum *.gz > SHA256SUMS)",
        out.display(),
        check.test.len(),
        out.display()
    );
    Ok(())
}

fn write_split(out: &Path, prefix: &str, set: &Dataset, keep: usize, image_len: usize) -> Result<(), DataError> {
    let images_path = out.join(format!("{prefix}-images-idx3-ubyte.gz"));
    let labels_path = out.join(format!("{prefix}-labels-idx1-ubyte.gz"));
    let name = images_path.display().to_string();
    let mut gz = gzip(&images_path)?;
    data::write_images(&mut gz, &name, set.rows, set.cols, &set.images[..keep * image_len])?;
    finish(gz, &images_path)?;
    let name = labels_path.display().to_string();
    let mut gz = gzip(&labels_path)?;
    data::write_labels(&mut gz, &name, &set.labels[..keep])?;
    finish(gz, &labels_path)
}

/// A gzip writer with a fixed header (mtime 0, no file name, OS "unknown"), so reruns produce
/// identical bytes.
fn gzip(path: &Path) -> Result<flate2::write::GzEncoder<BufWriter<File>>, DataError> {
    let file = File::create(path).map_err(|e| io_err(path, e))?;
    Ok(GzBuilder::new().mtime(0).write(BufWriter::new(file), Compression::best()))
}

fn finish(gz: flate2::write::GzEncoder<BufWriter<File>>, path: &Path) -> Result<(), DataError> {
    let mut inner = gz.finish().map_err(|e| io_err(path, e))?;
    inner.flush().map_err(|e| io_err(path, e))
}

fn open(path: &Path) -> Result<File, DataError> {
    File::open(path).map_err(|e| io_err(path, e))
}

fn io_err(path: &Path, source: std::io::Error) -> DataError {
    DataError::Io { name: path.display().to_string(), source }
}
