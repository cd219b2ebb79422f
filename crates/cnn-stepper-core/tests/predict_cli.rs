//! `predict` and the names in `eval --out`: a saved network classifies picture files the test
//! writes (PNG, JPEG), each prepared as training did — resized in colour for a colour network,
//! and like a drawn MNIST digit for a grey 28×28 one, so that a digit written dark on white
//! paper, off-centre and large, reaches the network as the MNIST digit it was.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers may panic: that is the failure report.

mod common;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use cnn_stepper_core::cli::args::{self, Cli, Command, Outcome, exit_code};
use cnn_stepper_core::cli::predict::{self, PredictSummary, Predictor};
use cnn_stepper_core::cli::{self, CliError};
use cnn_stepper_core::data::draw::{Canvas, INK_BOX};
use cnn_stepper_core::data::picture::{Picture, file_for_input, for_input};
use cnn_stepper_core::data::{self, Dataset, MNIST_SIDE, Splits};
use cnn_stepper_core::engine::weights;
use cnn_stepper_core::engine::{ConvEngine, Preset};
use cnn_stepper_core::trainer::Session;
use image::{GrayImage, ImageFormat, Luma, Rgb, RgbImage, imageops};

const N: usize = MNIST_SIDE;

/// The colours of the generated set, one class each.
const COLOURS: [(&str, [u8; 3]); 3] = [("red", [220, 30, 30]), ("green", [30, 200, 40]), ("blue", [30, 40, 220])];

/// A small deterministic generator, so the sets are the same on every run.
struct Lcg(u64);

impl Lcg {
    /// A value in `-spread..=spread`.
    fn jitter(&mut self, spread: i32) -> i32 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % (2 * spread as u64 + 1)) as i32 - spread
    }
}

/// `n` colour 8×8 images per split whose class is their colour, with noise on every pixel.
fn colour_splits(n: usize) -> Splits {
    let mut rng = Lcg(7);
    let mut split = |count: usize| {
        let (mut images, mut labels) = (Vec::new(), Vec::new());
        for i in 0..count {
            let class = i % COLOURS.len();
            for c in 0..3 {
                for _ in 0..64 {
                    images.push((i32::from(COLOURS[class].1[c]) + rng.jitter(35)).clamp(0, 255) as u8);
                }
            }
            labels.push(class as u8);
        }
        let names = COLOURS.iter().map(|(name, _)| (*name).to_owned()).collect();
        Dataset::with_channels(images, labels, 3, 8, 8, names).unwrap()
    };
    let (train, test) = (split(n), split(n / 2));
    Splits::new(train, test, "generated colours".to_owned(), Vec::new()).unwrap()
}

/// A colour network trained a few dozen steps on [`colour_splits`], saved as a session file
/// and as a weights file; both name the classes.
fn colour_model(dir: &Path) -> (PathBuf, PathBuf) {
    let data = Arc::new(colour_splits(96));
    let line = "conv(4,3,pad=1), relu, maxpool(2), flatten, fc(3)";
    let mut session = Session::new(data, 1, Preset::Recommended, line, ConvEngine::Fast).unwrap();
    for _ in 0..80 {
        session.step_batch(&mut |_, _| {}).unwrap();
    }
    let (session_file, weights_file) = (dir.join("colours.session"), dir.join("colours.safetensors"));
    session.save_checkpoint(&session_file).unwrap();
    weights::save_model(&weights_file, &session.to_file().unwrap().model_weights()).unwrap();
    (session_file, weights_file)
}

fn write_picture(path: &Path, image: &RgbImage, format: ImageFormat) {
    image.save_with_format(path, format).unwrap();
}

/// A picture of `colour` with some texture, in the size of a small photo.
fn colour_picture(colour: [u8; 3], w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let shade = ((x * 7 + y * 13) % 31) as i32 - 15;
        Rgb(colour.map(|c| (i32::from(c) + shade).clamp(0, 255) as u8))
    })
}

/// `predict` with its output and errors captured.
fn run_predict(weights: &Path, images: &[PathBuf]) -> (Result<PredictSummary, CliError>, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let result = predict::predict(weights, None, None, images, &mut out, &mut err);
    (result, String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
}

/// The names and percentages of one output line, `file: name p%, …`.
fn parse_line(line: &str) -> (String, Vec<(String, f32)>) {
    let (file, rest) = line.rsplit_once(": ").unwrap();
    let guesses = rest
        .split(", ")
        .map(|part| {
            let (name, p) = part.rsplit_once(' ').unwrap();
            (name.to_owned(), p.strip_suffix('%').unwrap().parse().unwrap())
        })
        .collect();
    (file.to_owned(), guesses)
}

#[test]
fn predict_names_the_colour_of_each_picture_from_a_weights_or_session_file() {
    let dir = tempfile::tempdir().unwrap();
    let (session_file, weights_file) = colour_model(dir.path());
    let red = dir.path().join("red.png");
    let green = dir.path().join("green.jpg");
    let blue = dir.path().join("blue.png");
    write_picture(&red, &colour_picture(COLOURS[0].1, 64, 48), ImageFormat::Png);
    write_picture(&green, &colour_picture(COLOURS[1].1, 50, 70), ImageFormat::Jpeg);
    write_picture(&blue, &colour_picture(COLOURS[2].1, 8, 8), ImageFormat::Png);
    let pictures = vec![red.clone(), green.clone(), blue.clone()];

    let (result, out, err) = run_predict(&weights_file, &pictures);
    assert_eq!(result.unwrap(), PredictSummary { classified: 3, failed: 0 });
    assert_eq!(err, "", "nothing to report");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    for ((line, path), (colour, _)) in lines.iter().zip(&pictures).zip(COLOURS) {
        let (file, guesses) = parse_line(line);
        assert_eq!(file, path.display().to_string());
        let names: Vec<&str> = guesses.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names.len(), 3, "all three classes: {line}");
        assert_eq!(names[0], colour, "{line}");
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, ["blue", "green", "red"], "each class once: {line}");
        let ps: Vec<f32> = guesses.iter().map(|g| g.1).collect();
        assert!(ps.windows(2).all(|w| w[0] >= w[1]), "most probable first: {line}");
        assert!(ps[0] > 50.0 && ps.iter().sum::<f32>() <= 100.0 && ps.iter().sum::<f32>() > 99.7, "{line}");
    }

    // The session file is read as the same network.
    let (result, same, _) = run_predict(&session_file, &pictures);
    result.unwrap();
    assert_eq!(same, out);

    // One decimal, floored as the window shows it: the printed figure is the probability's.
    let mut predictor = Predictor::open(&weights_file, None, None, &mut Vec::new()).unwrap();
    assert_eq!(predictor.input(), (3, 8, 8));
    assert_eq!(predictor.class_names(), ["red", "green", "blue"]);
    let probs = predictor.probabilities(&file_for_input(&red, (3, 8, 8)).unwrap()).unwrap();
    let top = parse_line(lines[0]).1[0].1;
    let exact = 100.0 * probs[0];
    assert!(top <= exact + 1e-3 && exact - top < 0.1 + 1e-3, "{top} printed for {exact}");
}

#[test]
fn a_picture_that_cannot_be_read_is_reported_and_the_others_still_run() {
    let dir = tempfile::tempdir().unwrap();
    let (_, weights_file) = colour_model(dir.path());
    let good = dir.path().join("good.png");
    write_picture(&good, &colour_picture(COLOURS[2].1, 20, 20), ImageFormat::Png);
    let broken = dir.path().join("photo.heic");
    std::fs::write(&broken, b"\0\0\0\x18ftypheic not a picture this reader knows").unwrap();
    let missing = dir.path().join("missing.png");
    let pictures = vec![broken.clone(), good.clone(), missing.clone()];

    let (result, out, err) = run_predict(&weights_file, &pictures);
    assert_eq!(result.unwrap(), PredictSummary { classified: 1, failed: 2 });
    assert!(out.starts_with(&format!("{}: blue ", good.display())), "{out}");
    assert_eq!(out.lines().count(), 1);
    let errors: Vec<&str> = err.lines().collect();
    assert_eq!(errors.len(), 2, "{err}");
    assert!(errors[0].starts_with(&format!("error: {}: ", broken.display())), "{err}");
    assert!(errors[0].contains("cannot read the picture"), "{err}");
    assert!(errors[1].starts_with(&format!("error: {}: ", missing.display())), "{err}");
    assert!(errors[1].contains("no such file"), "{err}");

    // Through the command line as `main` runs it: the good picture is still classified, and
    // the exit code says that not everything went well.
    let argv = ["cnn-stepper", "predict", "--weights"]
        .map(String::from)
        .into_iter()
        .chain([weights_file, broken, good].map(|p| p.display().to_string()));
    let cli = Cli::try_parse_from(argv).unwrap();
    assert!(matches!(cli.command, Some(Command::Predict { ref images, .. }) if images.len() == 2));
    let load = cli.load_options();
    let result = args::run(cli.command.unwrap(), cli.data, load);
    assert_eq!(result.as_ref().unwrap(), &Outcome::Incomplete);
    assert_eq!(exit_code(&result), ExitCode::FAILURE);
}

#[test]
fn predict_needs_a_picture_and_a_readable_weights_file() {
    let e = Cli::try_parse_from(["cnn-stepper", "predict", "--weights", "w.safetensors"]).unwrap_err();
    assert!(e.to_string().contains("IMAGE"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing.safetensors");
    let (result, out, _) = run_predict(&missing, &[dir.path().join("a.png")]);
    let e = result.unwrap_err().to_string();
    assert!(e.contains("nothing.safetensors"), "{e}");
    assert_eq!(out, "");
}

/// Pearson correlation of two images.
fn correlation(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len() as f32;
    let (ma, mb) = (a.iter().sum::<f32>() / n, b.iter().sum::<f32>() / n);
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        ab += (x - ma) * (y - mb);
        aa += (x - ma) * (x - ma);
        bb += (y - mb) * (y - mb);
    }
    ab / (aa * bb).sqrt()
}

/// The best correlation of `a` shifted by at most one pixel each way with `b`: MNIST's centring
/// moves ink by whole pixels, so the same digit resampled may land one pixel over.
fn shifted_correlation(a: &[f32], b: &[f32]) -> f32 {
    let mut best = -1.0_f32;
    for dy in -1..=1_isize {
        for dx in -1..=1_isize {
            let moved: Vec<f32> = (0..N * N)
                .map(|i| {
                    let (x, y) = ((i % N) as isize - dx, (i / N) as isize - dy);
                    if (0..N as isize).contains(&x) && (0..N as isize).contains(&y) {
                        a[y as usize * N + x as usize]
                    } else {
                        0.0
                    }
                })
                .collect();
            best = best.max(correlation(&moved, b));
        }
    }
    best
}

/// Centre of mass (column, row) in pixel indices.
fn centre_of_mass(img: &[f32]) -> (f32, f32) {
    let (mut s, mut sx, mut sy) = (0.0, 0.0, 0.0);
    for (i, &v) in img.iter().enumerate() {
        s += v;
        sx += v * (i % N) as f32;
        sy += v * (i / N) as f32;
    }
    (sx / s, sy / s)
}

/// (width, height) of the box holding every pixel above `threshold`.
fn ink_box(img: &[f32], threshold: f32) -> (usize, usize) {
    let inked: Vec<(usize, usize)> =
        img.iter().enumerate().filter(|(_, v)| **v > threshold).map(|(i, _)| (i % N, i / N)).collect();
    let span =
        |f: fn(&(usize, usize)) -> usize| inked.iter().map(f).max().unwrap() - inked.iter().map(f).min().unwrap() + 1;
    (span(|p| p.0), span(|p| p.1))
}

/// An MNIST digit as it would be written on paper: dark on white, four times as large,
/// placed off-centre on a wider page, as a PNG.
fn digit_on_paper(digit: &[u8]) -> Vec<u8> {
    let ink = GrayImage::from_raw(N as u32, N as u32, digit.iter().map(|v| 255 - v).collect()).unwrap();
    let large = imageops::resize(&ink, 4 * N as u32, 4 * N as u32, imageops::FilterType::Triangle);
    let mut page = GrayImage::from_pixel(300, 220, Luma([255]));
    imageops::overlay(&mut page, &large, 20, 90);
    let mut png = Vec::new();
    page.write_to(&mut std::io::Cursor::new(&mut png), ImageFormat::Png).unwrap();
    png
}

#[test]
fn a_digit_written_dark_on_white_off_centre_and_large_comes_back_as_the_mnist_digit() {
    let mnist = data::embedded().unwrap();
    let mut total = 0.0;
    for i in 0..40 {
        let digit = mnist.test.image(i);
        let original: Vec<f32> = digit.iter().map(|&b| f32::from(b) / 255.0).collect();
        let picture = Picture::decode(&digit_on_paper(digit), "digit.png").unwrap();
        let prepared = for_input(&picture, (1, N, N));
        assert_eq!(prepared.len(), N * N);
        let r = shifted_correlation(&prepared, &original);
        assert!(r > 0.9, "digit {i}: correlation {r}");
        total += r;
        let (cx, cy) = centre_of_mass(&prepared);
        assert!((cx - 14.0).abs() <= 0.5 && (cy - 14.0).abs() <= 0.5, "digit {i}: centre of mass ({cx}, {cy})");
        // The enlarged copy's edges are softer than MNIST's: its faint rim may differ by a pixel
        // or two, its size may not.
        let ((w, h), (ow, oh)) = (ink_box(&prepared, 0.1), ink_box(&original, 0.1));
        assert!(w.abs_diff(ow) <= 2 && h.abs_diff(oh) <= 2, "digit {i}: ink box {w}×{h}, MNIST's {ow}×{oh}");
        assert!(w.max(h) <= INK_BOX);
    }
    assert!(total / 40.0 > 0.95, "mean correlation {}", total / 40.0);
}

#[test]
fn a_photographed_pen_digit_comes_out_as_the_same_digit_drawn_in_the_window() {
    // A 7 with a crossbar, written with a fine pen on paper lit from one side, photographed with
    // grain and saved as JPEG; and the same strokes drawn with the window's pen.
    let strokes = [([0.30, 0.25], [0.62, 0.27]), ([0.62, 0.27], [0.45, 0.75]), ([0.38, 0.50], [0.60, 0.50])];
    let mut pen = Canvas::new(800).with_pen_radius(0.004);
    let mut drawn = Canvas::default();
    for (a, b) in strokes {
        pen.stroke(a, b);
        drawn.stroke(a, b);
    }
    let mut grain = Lcg(3);
    let photo = RgbImage::from_fn(800, 800, |x, y| {
        let paper = 0.70 + 0.2 * x as f32 / 800.0 + grain.jitter(12) as f32 / 255.0;
        let v = 255.0 * paper * (1.0 - 0.65 * pen.pixels()[(y * 800 + x) as usize]);
        Rgb([v, v, 0.95 * v].map(|c| c.clamp(0.0, 255.0) as u8))
    });
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 80).encode_image(&photo).unwrap();

    let prepared = for_input(&Picture::decode(&jpeg, "photo.jpg").unwrap(), (1, N, N));
    let want = drawn.to_mnist().unwrap();
    let r = shifted_correlation(&prepared, &want);
    assert!(r > 0.93, "correlation with the drawn digit {r}");
    let (cx, cy) = centre_of_mass(&prepared);
    assert!((cx - 14.0).abs() <= 0.5 && (cy - 14.0).abs() <= 0.5, "centre of mass ({cx}, {cy})");
    // The hairline was thickened: as much ink as the drawn digit, within a third.
    let (ink, drawn_ink) = (prepared.iter().sum::<f32>(), want.iter().sum::<f32>());
    assert!((ink / drawn_ink - 1.0).abs() < 0.33, "ink {ink} vs drawn {drawn_ink}");
    assert!(prepared[0] == 0.0 && prepared[N * N - 1] == 0.0, "the paper is black");
}

#[test]
fn predict_gives_a_digit_on_paper_the_class_of_the_mnist_digit() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::sample();
    let line = "conv(8,5,pad=2), relu, maxpool(2), conv(16,5,pad=2), relu, maxpool(2), flatten, fc(10)";
    let mut session = Session::new(data.clone(), 1, Preset::Recommended, line, ConvEngine::Fast).unwrap();
    for _ in 0..150 {
        session.step_batch(&mut |_, _| {}).unwrap();
    }
    let file = dir.path().join("digits.safetensors");
    weights::save_model(&file, &session.to_file().unwrap().model_weights()).unwrap();

    let mut predictor = Predictor::open(&file, None, None, &mut Vec::new()).unwrap();
    let mut pictures = Vec::new();
    let mut expected = Vec::new();
    for i in 0..60 {
        let digit = data.test.image(i);
        let original: Vec<f32> = digit.iter().map(|&b| f32::from(b) / 255.0).collect();
        let probs = predictor.probabilities(&original).unwrap();
        let (class, p) = predict::top_classes(&probs, 1)[0];
        // Digits the network reads confidently and rightly: their paper copies must agree.
        if class != usize::from(data.test.labels[i]) || p < 0.9 {
            continue;
        }
        let path = dir.path().join(format!("digit{i}.png"));
        std::fs::write(&path, digit_on_paper(digit)).unwrap();
        pictures.push(path);
        expected.push(class.to_string());
        if pictures.len() == 12 {
            break;
        }
    }
    assert_eq!(pictures.len(), 12, "the network reads a dozen of the first 60 digits confidently");
    let (result, out, _) = run_predict(&file, &pictures);
    assert_eq!(result.unwrap().classified, 12);
    let got: Vec<String> = out.lines().map(|l| parse_line(l).1[0].0.clone()).collect();
    assert_eq!(got, expected, "{out}");
}

/// The fields of one CSV line (quoted fields with doubled quotes, as RFC 4180).
fn csv_fields(line: &str) -> Vec<String> {
    let (mut fields, mut field, mut quoted, mut chars) = (Vec::new(), String::new(), false, line.chars().peekable());
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            _ => field.push(c),
        }
    }
    fields.push(field);
    fields
}

#[test]
fn eval_out_names_each_images_label_and_prediction_quoting_names_with_commas() {
    let dir = tempfile::tempdir().unwrap();
    common::small_folder(dir.path(), 64);
    let names = ["zero", "one, uno", "two \"2\"", "three", "four", "five", "six", "seven", "eight", "nine"];
    std::fs::write(dir.path().join(data::CLASSES_FILE), names.join("\n")).unwrap();
    let data = Arc::new(cli::load_data(Some(dir.path()), &Default::default(), &|_| {}).unwrap());
    assert_eq!(data.test.class_names, names);
    let mut session = Session::new(data, 1, Preset::Recommended, "tiny", ConvEngine::Fast).unwrap();
    for _ in 0..4 {
        session.step_batch(&mut |_, _| {}).unwrap();
    }
    let file = dir.path().join("w.safetensors");
    weights::save_model(&file, &session.to_file().unwrap().model_weights()).unwrap();

    let csv = dir.path().join("pred.csv");
    cli::eval_model(&file, None, Some(dir.path()), &Default::default(), Some(&csv), &mut Vec::new()).unwrap();
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next().unwrap(), "index,label,predicted,p0,p1,p2,p3,p4,p5,p6,p7,p8,p9,label_name,predicted_name");
    let mut rows = 0;
    for line in lines {
        let f = csv_fields(line);
        assert_eq!(f.len(), 15, "{line}");
        let (label, predicted): (usize, usize) = (f[1].parse().unwrap(), f[2].parse().unwrap());
        assert_eq!((f[13].as_str(), f[14].as_str()), (names[label], names[predicted]), "{line}");
        rows += 1;
    }
    assert_eq!(rows, 64);
    assert!(text.contains(",\"one, uno\""), "a name with a comma is quoted");
    assert!(text.contains(",\"two \"\"2\"\"\""), "a quote inside a name is doubled");
    assert_eq!(cli::csv_field("plain"), "plain");
}

/// The tensors as PyTorch's `save_file` writes them: no metadata, so no network, input or names.
fn state_dict(w: &weights::ModelWeights) -> Vec<u8> {
    use safetensors::tensor::{Dtype, TensorView};
    let bytes: Vec<Vec<u8>> = w.tensors.iter().map(|t| t.data.iter().flat_map(|v| v.to_le_bytes()).collect()).collect();
    let views: Vec<(String, TensorView<'_>)> = w
        .tensors
        .iter()
        .zip(&bytes)
        .map(|(t, b)| (t.name.clone(), TensorView::new(Dtype::F32, t.shape.clone(), b).unwrap()))
        .collect();
    safetensors::serialize(views, None).unwrap()
}

#[test]
fn a_pytorch_state_dict_is_read_as_model_on_mnist_images_and_numbered_unless_classes_names_them() {
    let dir = tempfile::tempdir().unwrap();
    let session = Session::new(common::first(64), 1, Preset::Recommended, "lenet5", ConvEngine::Fast).unwrap();
    let saved = session.to_file().unwrap().model_weights();
    let file = dir.path().join("torch.safetensors");
    std::fs::write(&file, state_dict(&saved)).unwrap();
    let digit = dir.path().join("digit.png");
    std::fs::write(&digit, digit_on_paper(data::embedded().unwrap().test.image(0))).unwrap();

    let mut notes = Vec::new();
    let mut predictor = Predictor::open(&file, Some("lenet5"), None, &mut notes).unwrap();
    assert_eq!(predictor.input(), (1, N, N));
    let numbers: Vec<String> = (0..10).map(|c| c.to_string()).collect();
    assert_eq!(predictor.class_names(), numbers);
    // The same network as the one saved: the same probabilities.
    let image = file_for_input(&digit, (1, N, N)).unwrap();
    let mut direct = Predictor::open(&dir.path().join("own.safetensors"), None, None, &mut Vec::new());
    assert!(direct.is_err(), "no such file yet");
    weights::save_model(&dir.path().join("own.safetensors"), &saved).unwrap();
    direct = Predictor::open(&dir.path().join("own.safetensors"), None, None, &mut Vec::new());
    assert_eq!(predictor.probabilities(&image).unwrap(), direct.unwrap().probabilities(&image).unwrap());

    let fashion = Predictor::open(&file, Some("lenet5"), Some(data::ClassNames::Fashion), &mut notes).unwrap();
    assert_eq!(fashion.class_names()[9], "Ankle boot");
    // Only what eval says of such a file too: it has no checksums.
    let notes = String::from_utf8(notes).unwrap();
    assert_eq!(notes.lines().count(), 2, "{notes}");
    assert!(notes.lines().all(|l| l.starts_with("note: ") && l.contains("no checksums")), "{notes}");

    // Without --model it is read as the post's network, which its tensors do not fit: the
    // error says to give --model.
    let e = Predictor::open(&file, None, None, &mut Vec::new()).unwrap_err().to_string();
    assert!(e.contains("torch.safetensors") && e.contains("--model"), "{e}");
    // A file that names its network refuses another.
    let e = Predictor::open(&dir.path().join("own.safetensors"), Some("tiny"), None, &mut Vec::new()).unwrap_err();
    assert!(e.to_string().contains("own.safetensors"), "{e}");
}
