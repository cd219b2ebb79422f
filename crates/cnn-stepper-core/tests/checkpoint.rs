//! Session files: saving and reopening continues bit-identically, plain weights open for
//! further training, session files stay readable as weights, the CLI resumes, exports, and no
//! corrupt file makes the loader panic.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers may panic: that is the failure report.

mod common;

use std::path::Path;
use std::sync::Arc;

use cnn_stepper_core::cli::{self, Console, StopFlag, TrainOptions};
use cnn_stepper_core::data::{Dataset, Splits};
use cnn_stepper_core::engine::weights::{self, Loaded, WeightsMeta};
use cnn_stepper_core::engine::{ConvEngine, ModelConfig, Preset, npz};
use cnn_stepper_core::trainer::checkpoint::{self, CheckpointError, History, MAX_LOSS_POINTS};
use cnn_stepper_core::trainer::{Command, Event, LossPoint, Session, TrainError, Worker};
use common::{POST, first, post_params, sample, state, steps, wait_for};
use proptest::prelude::*;

fn assert_same_state(a: &Session, b: &Session) {
    assert_eq!(a.step(), b.step());
    assert_eq!(a.epoch(), b.epoch());
    let (sa, sb) = (state(a), state(b));
    assert_eq!(sa.params, sb.params, "weights differ");
    assert_eq!(sa.deltas, sb.deltas, "momentum differs");
    assert_eq!((&sa.adam, sa.adam_steps), (&sb.adam, sb.adam_steps), "Adam's state differs");
    assert_eq!(a.history(), b.history(), "histories differ");
}

#[test]
fn resuming_a_saved_session_continues_bit_identically() {
    // 96 images in batches of 32: 3 steps an epoch, so the run crosses two epoch boundaries
    // (new order, learning-rate decay) after the save.
    let data = first(96);
    let (k, m) = (2, 5);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.safetensors");

    let mut before = Session::new(data.clone(), 11, Preset::Recommended, POST, ConvEngine::Fast).unwrap();
    steps(&mut before, k);
    before.save_checkpoint(&path).unwrap();
    let mut resumed = Session::open_checkpoint(data.clone(), &path, ConvEngine::Fast, None).unwrap();
    assert_same_state(&before, &resumed);
    steps(&mut resumed, m);

    let mut straight = Session::new(data, 11, Preset::Recommended, POST, ConvEngine::Fast).unwrap();
    steps(&mut straight, k + m);
    assert_same_state(&resumed, &straight);
    assert_eq!(resumed.settings(), straight.settings());
}

#[test]
fn changed_settings_survive_the_file() {
    let data = sample();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.safetensors");
    let mut s = Session::new(data.clone(), 2, Preset::Post, POST, ConvEngine::Fast).unwrap();
    let mut tuned = s.settings();
    tuned.hyper.lr = 0.003;
    tuned.batch_size = 8;
    s.set_settings(tuned).unwrap();
    steps(&mut s, 2);
    s.save_checkpoint(&path).unwrap();
    let mut r = Session::open_checkpoint(data, &path, ConvEngine::Fast, None).unwrap();
    assert_eq!(r.settings(), tuned);
    assert_eq!(r.snapshot().preset, Preset::Post);
}

#[test]
fn saving_in_the_middle_of_a_step_is_refused_with_the_step_named() {
    let mut s = Session::new(sample(), 1, Preset::Recommended, POST, ConvEngine::Fast).unwrap();
    s.step_phase(&mut |_, _| {}).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("half.safetensors");
    let err = s.save_checkpoint(&path).unwrap_err();
    assert!(matches!(err.cause(), TrainError::MidStep { step: 1, done: 1, .. }), "{err}");
    assert!(err.to_string().starts_with(&format!("{}: cannot save in the middle of step 1", path.display())), "{err}");
    assert!(!path.exists());
}

#[test]
fn the_worker_saves_after_finishing_a_half_done_step_and_opens_it_again() {
    let data = sample();
    let s = Session::new(data.clone(), 5, Preset::Recommended, POST, ConvEngine::Fast).unwrap();
    let worker = Worker::spawn(s, || {}).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    worker.send(Command::StepBatch);
    worker.send(Command::StepPhase);
    worker.send(Command::Save(path.clone()));
    let e = wait_for(&worker, "the save notice", |e| matches!(e, Event::Snapshot(s) if !s.notices.is_empty()));
    let Event::Snapshot(snap) = e else { unreachable!() };
    assert_eq!(snap.step, 2, "the half-done second step was finished before saving");
    assert!(snap.notices[0].contains("saved") && snap.notices[0].contains("w.safetensors"), "{:?}", snap.notices);

    let mut direct = Session::new(data.clone(), 5, Preset::Recommended, POST, ConvEngine::Fast).unwrap();
    steps(&mut direct, 2);
    let opened = Session::open_checkpoint(data, &path, ConvEngine::Fast, None).unwrap();
    assert_same_state(&opened, &direct);

    worker.send(Command::Reset { seed: 9, preset: Preset::Recommended, model: POST.into() });
    worker.send(Command::Open(path.clone()));
    let e = wait_for(&worker, "the open notice", |e| matches!(e, Event::Snapshot(s) if !s.notices.is_empty()));
    let Event::Snapshot(snap) = e else { unreachable!() };
    assert_eq!(snap.step, 2);
    assert_eq!(snap.seed, 5);
    assert!(snap.curves_reset);
    assert_eq!(snap.new_loss_points.len(), 2, "the whole history comes with the opened file");

    worker.send(Command::Open(dir.path().join("absent.safetensors")));
    let e = wait_for(&worker, "the error", |e| matches!(e, Event::Error(_)));
    let Event::Error(msg) = e else { unreachable!() };
    assert!(msg.contains("absent.safetensors"), "{msg}");
    assert!(worker.is_alive());
}

#[test]
fn a_plain_weights_file_opens_at_step_zero_for_further_training() {
    let data = sample();
    let mut s = Session::new(data.clone(), 4, Preset::Recommended, POST, ConvEngine::Fast).unwrap();
    steps(&mut s, 1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain.safetensors");
    // As PyTorch would write it: no metadata of ours, so no seed either.
    let bytes = weights::to_bytes(&post_params(&s, &ModelConfig::default()), &WeightsMeta::new(ModelConfig::default()))
        .unwrap();
    let Loaded { params, .. } = weights::from_bytes(&bytes, "x", None).unwrap();
    weights::save(&path, &params, &WeightsMeta { seed: None, ..WeightsMeta::new(ModelConfig::default()) }).unwrap();

    let mut opened = Session::open_checkpoint(data.clone(), &path, ConvEngine::Fast, None).unwrap();
    assert_eq!(opened.step(), 0);
    assert_eq!(state(&opened).params, state(&s).params);
    assert_eq!(opened.model().name.as_deref(), Some("post"), "an old weights file of the post's network");
    assert!(state(&opened).deltas.iter().all(|t| t.iter().all(|v| *v == 0.0)));
    assert!(opened.history().loss().is_empty());
    steps(&mut opened, 2);
    assert_eq!(opened.step(), 2);
    // Batches come from seed 1 when the file has no seed.
    assert_eq!(opened.snapshot().seed, 1);
}

#[test]
fn a_session_file_still_loads_as_plain_weights() {
    let data = sample();
    let mut s = Session::new(data.clone(), 3, Preset::Recommended, POST, ConvEngine::Fast).unwrap();
    steps(&mut s, 1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.safetensors");
    s.save_checkpoint(&path).unwrap();
    // As PyTorch's `load_file` sees it: the state dict of the `nn.Sequential`, plus extra keys.
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut model_keys: Vec<String> =
        st.names().into_iter().filter(|n| !n.starts_with("session.")).map(str::to_owned).collect();
    model_keys.sort();
    let want: Vec<String> = s.network().params().iter().map(|p| p.name.clone()).collect();
    assert_eq!(model_keys, ["0.bias", "0.weight", "2.bias", "2.weight", "4.bias", "4.weight", "6.bias", "6.weight"]);
    for p in s.network().params() {
        let t = st.tensor(&p.name).unwrap();
        assert_eq!((t.dtype(), t.shape()), (safetensors::Dtype::F32, p.shape.as_slice()), "{}", p.name);
        let values: Vec<f32> = t.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
        assert_eq!(values, p.data, "{}", p.name);
    }
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let meta = header.metadata().clone().unwrap();
    for (key, value) in [("step", "1"), ("seed", "3"), ("preset", "recommended"), ("input", "1×28×28")] {
        assert_eq!(meta.get(key).map(String::as_str), Some(value), "{key}");
    }
    assert_eq!(meta["model"], s.model().line());

    // That state dict alone, as `safetensors.torch.save_file` writes it (no metadata), opens as
    // the network it is told it is, at step 0.
    let dict: Vec<(&str, safetensors::tensor::TensorView<'_>)> =
        want.iter().map(|n| (n.as_str(), st.tensor(n).unwrap())).collect();
    let torch = dir.path().join("torch.safetensors");
    std::fs::write(&torch, safetensors::serialize(dict, None).unwrap()).unwrap();
    let opened = Session::open_checkpoint(data, &torch, ConvEngine::Fast, Some(POST)).unwrap();
    assert_eq!((opened.step(), opened.model().name.as_deref()), (0, Some("post")));
    assert_eq!(state(&opened).params, state(&s).params);
}

#[test]
fn a_file_from_another_training_set_is_refused_with_both_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.safetensors");
    let mut s = Session::new(first(96), 3, Preset::Recommended, POST, ConvEngine::Fast).unwrap();
    steps(&mut s, 1);
    s.save_checkpoint(&path).unwrap();
    let err = Session::open_checkpoint(sample(), &path, ConvEngine::Fast, None).err().unwrap();
    assert!(
        matches!(err.cause(), TrainError::Checkpoint(CheckpointError::TrainingSet { saved: 96, found: 10_000, .. })),
        "refused while reading the file: {err}"
    );
    let err = err.to_string();
    assert!(err.contains("s.safetensors") && err.contains("96") && err.contains("10000"), "{err}");
}

fn options(dir: &Path, epochs: usize, save: &str) -> TrainOptions {
    TrainOptions {
        data: Some(dir.to_path_buf()),
        epochs,
        batch: Some(16),
        seed: Some(3),
        save: Some(dir.join(save)),
        ..TrainOptions::default()
    }
}

/// Runs `cli::train`, appending its standard output to `out`.
fn train(o: &TrainOptions, out: &mut Vec<u8>) -> cli::TrainSummary {
    let mut err = Vec::new();
    cli::train(o, &StopFlag::new(), &mut Console { out, err: &mut err, progress: false }).unwrap()
}

#[test]
fn cli_resume_continues_a_saved_run_and_counts_epochs_in_total() {
    let dir = tempfile::tempdir().unwrap();
    common::small_folder(dir.path(), 48);
    let mut out = Vec::new();
    train(&options(dir.path(), 1, "one.safetensors"), &mut out);
    let resume = TrainOptions {
        resume: Some(dir.path().join("one.safetensors")),
        seed: None,
        ..options(dir.path(), 3, "three.safetensors")
    };
    let reports = train(&resume, &mut out).reports;
    assert_eq!(reports.iter().map(|r| r.epoch).collect::<Vec<_>>(), [2, 3], "{}", String::from_utf8_lossy(&out));
    train(&options(dir.path(), 3, "straight.safetensors"), &mut out);

    let resumed = checkpoint::load(&dir.path().join("three.safetensors"), None, ConvEngine::Fast, None).unwrap().file;
    let straight =
        checkpoint::load(&dir.path().join("straight.safetensors"), None, ConvEngine::Fast, None).unwrap().file;
    assert_eq!(resumed.step, 9);
    assert_eq!(resumed, straight);
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("resuming") && text.contains("one.safetensors"), "{text}");
}

#[test]
fn export_writes_an_npz_with_the_posts_names_and_the_curves_as_csv() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Session::new(sample(), 3, Preset::Recommended, POST, ConvEngine::Fast).unwrap();
    steps(&mut s, 3);
    let path = dir.path().join("s.safetensors");
    s.save_checkpoint(&path).unwrap();
    let (npz_path, loss, acc) = (dir.path().join("w.npz"), dir.path().join("loss.csv"), dir.path().join("acc.csv"));
    let mut out = Vec::new();
    cli::export(&path, Some(&npz_path), Some(&loss), Some(&acc), &mut out).unwrap();

    let bytes = std::fs::read(&npz_path).unwrap();
    assert_eq!(bytes, npz::to_bytes(&post_params(&s, &ModelConfig::default())).unwrap());
    assert_eq!(&bytes[..4], b"PK\x03\x04");
    for name in npz::NPZ_NAMES {
        let member = format!("{name}.npy");
        assert!(bytes.windows(member.len()).any(|w| w == member.as_bytes()), "{member}");
    }
    // First member: c1_filters, header then 16·1·5·5 floats equal to conv1.weight.
    let name_len = u16::from_le_bytes([bytes[26], bytes[27]]) as usize;
    let size = u32::from_le_bytes(bytes[22..26].try_into().unwrap()) as usize;
    let crc = u32::from_le_bytes(bytes[14..18].try_into().unwrap());
    let npy = &bytes[30 + name_len..30 + name_len + size];
    assert_eq!(crc, crc32fast_hash(npy));
    assert!(npy.starts_with(b"\x93NUMPY\x01\x00"));
    let header_len = u16::from_le_bytes([npy[8], npy[9]]) as usize;
    assert_eq!((10 + header_len) % 64, 0);
    let header = std::str::from_utf8(&npy[10..10 + header_len]).unwrap();
    assert!(header.contains("'shape': (16, 1, 5, 5)") && header.contains("'<f4'"), "{header}");
    let values: Vec<f32> =
        npy[10 + header_len..].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    assert_eq!(values, common::param(&s, "conv1.weight"));

    let loss = std::fs::read_to_string(&loss).unwrap();
    assert!(loss.starts_with("step,loss,batch_accuracy\n1,"), "{loss}");
    assert_eq!(loss.lines().count(), 4);
    assert!(std::fs::read_to_string(&acc).unwrap().starts_with("step,test_accuracy\n"));
}

/// CRC-32 (IEEE), bit by bit: an independent check of the writer's crc32fast.
fn crc32fast_hash(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[test]
fn history_stays_bounded_and_keeps_the_curves_shape() {
    let mut h = History::new();
    let total = 3 * MAX_LOSS_POINTS as u64 + 123;
    for step in 1..=total {
        h.push_loss(LossPoint { step, loss: 1.0 / step as f32, batch_accuracy: 0.5 });
    }
    assert!(h.loss().len() <= MAX_LOSS_POINTS, "{}", h.loss().len());
    assert!(h.loss().len() >= MAX_LOSS_POINTS / 4, "{}", h.loss().len());
    assert!(h.stride().is_power_of_two() && h.stride() >= 4);
    assert!(h.loss().windows(2).all(|w| w[0].step < w[1].step && w[0].loss >= w[1].loss));
    assert!(h.loss().iter().all(|p| p.batch_accuracy == 0.5));
    assert!(h.loss().last().unwrap().step > total - 2 * h.stride());
    let (csv, _) = h.curves_csv();
    assert_eq!(csv.lines().count(), h.loss().len() + 1);
}

/// A tiny network and data set so that files are a few kilobytes and each case is fast: the
/// network of `common::tiny` on 8×8 images of 4 classes.
fn tiny() -> (Arc<Splits>, &'static str) {
    let cfg = common::TINY;
    let n = 12;
    let images: Vec<u8> = (0..n * 64).map(|i| ((i * 37 + 11) % 256) as u8).collect();
    let labels: Vec<u8> = (0..n).map(|i| (i % 4) as u8).collect();
    let names: Vec<String> = (0..4).map(|c| c.to_string()).collect();
    let set = Dataset::new(images, labels, 8, 8, names).unwrap();
    (Arc::new(Splits { train: set.clone(), test: set, source: "tiny".into(), notes: Vec::new() }), cfg)
}

fn tiny_file() -> Vec<u8> {
    let (data, cfg) = tiny();
    let mut s = Session::new(data, 1, Preset::Recommended, cfg, ConvEngine::Fast).unwrap();
    let mut settings = s.settings();
    settings.batch_size = 4;
    s.set_settings(settings).unwrap();
    steps(&mut s, 5);
    s.to_file().unwrap().to_bytes("tiny").unwrap()
}

fn open_bytes(bytes: &[u8]) -> Result<Session, String> {
    let (data, _) = tiny();
    let opened = checkpoint::from_bytes(bytes, "bad.safetensors", Some(data.train.len()), ConvEngine::Fast, None)
        .map_err(|e| e.to_string())?;
    Session::from_file(data, opened.file, ConvEngine::Fast).map_err(|e| e.to_string())
}

#[test]
fn the_tiny_session_file_round_trips() {
    let bytes = tiny_file();
    let mut s = open_bytes(&bytes).unwrap();
    assert_eq!(s.step(), 5);
    steps(&mut s, 2);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_are_an_error_not_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let err = open_bytes(&bytes).err().unwrap();
        prop_assert!(err.starts_with("bad.safetensors"), "{}", err);
    }

    #[test]
    fn a_truncated_session_file_is_an_error_not_a_panic(cut in 0usize..100_000) {
        let bytes = tiny_file();
        let cut = cut % bytes.len();
        let err = open_bytes(&bytes[..cut]).err().unwrap();
        prop_assert!(err.starts_with("bad.safetensors"), "{}", err);
    }

    #[test]
    fn a_bit_flipped_session_file_is_an_error_or_a_usable_session(
        flips in proptest::collection::vec((0usize..1_000_000, 0u8..8), 1..4)
    ) {
        let mut bytes = tiny_file();
        let len = bytes.len();
        for (at, bit) in flips {
            bytes[at % len] ^= 1 << bit;
        }
        // Either outcome is fine; a panic or hang fails the test. A session that opens must
        // also train (flipped weights may be NaN: that is a divergence error, not a crash).
        if let Ok(mut s) = open_bytes(&bytes) {
            let _ = s.step_batch(&mut |_, _| {});
            let _ = s.to_file().map(|f| f.to_bytes("again"));
        }
    }
}

/// The fixture of a format-v1 session (see tests/fixtures/README.md) and what the old code
/// recorded about it.
fn v1_fixture() -> (std::path::PathBuf, serde_json::Value) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let json = std::fs::read_to_string(dir.join("session_v1_small.json")).unwrap();
    (dir.join("session_v1_small.safetensors"), serde_json::from_str(&json).unwrap())
}

fn f32s(v: &serde_json::Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

/// Probabilities and predictions of the first `n` test images.
fn predictions(s: &mut Session, n: usize) -> (Vec<Vec<f32>>, Vec<usize>) {
    (0..n)
        .map(|i| {
            let p = s.probe(&cnn_stepper_core::trainer::ProbeInput::TestImage(i)).unwrap();
            (p.sample.probs, p.predicted)
        })
        .unzip()
}

/// Bit for bit: the fixture's numbers were computed by the same arithmetic on two threads, and
/// the test runs on two threads too (the split of a batch sets the order of its sums).
fn assert_same_bits(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(g.to_bits() == w.to_bits(), "{what}[{i}]: {g} vs the old code's {w}");
    }
}

#[test]
fn a_v1_session_of_the_posts_shape_opens_as_saved_and_continues_as_the_old_code_did() {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    pool.install(v1_session_continues);
}

fn v1_session_continues() {
    let (path, old) = v1_fixture();
    let mut s = Session::open_checkpoint(sample(), &path, ConvEngine::Fast, None).unwrap();
    // The network, its start and where it stood.
    assert_eq!(s.model().line(), old["line"].as_str().unwrap());
    assert_eq!(s.model().name, None, "not the post's sizes, so no name");
    assert_eq!((s.seed(), s.preset(), s.step()), (7, Preset::Recommended, old["step"].as_u64().unwrap()));
    assert_eq!(s.epoch_position() as u64, old["epoch_position"].as_u64().unwrap());
    let settings = s.settings();
    assert_eq!(settings.batch_size as u64, old["batch_size"].as_u64().unwrap());
    assert_eq!((settings.hyper.lr, settings.hyper.momentum), (0.01, 0.9));
    assert_eq!(settings.hyper.optimizer, cnn_stepper_core::engine::OptimizerKind::Sgd, "v1 knew only SGD");

    // The curves, exactly as saved; v1's six magnitudes spread over the seven layers.
    let losses: Vec<(u64, f32, f32)> = s.history().loss().iter().map(|p| (p.step, p.loss, p.batch_accuracy)).collect();
    let want: Vec<(u64, f32, f32)> = old["loss"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_u64().unwrap(), p[1].as_f64().unwrap() as f32, p[2].as_f64().unwrap() as f32))
        .collect();
    assert_eq!(losses, want);
    let accuracy: Vec<(u64, f32)> = s.history().accuracy().iter().map(|p| (p.step, p.accuracy)).collect();
    assert_eq!(accuracy, [(6, old["accuracy"][0][1].as_f64().unwrap() as f32)]);
    let magnitudes = s.history().magnitudes();
    assert_eq!(magnitudes.len(), old["magnitudes"].as_array().unwrap().len());
    for (got, want) in magnitudes.iter().zip(old["magnitudes"].as_array().unwrap()) {
        let a = f32s(&want["activations"]);
        // conv1, relu1, conv2, flatten (conv2's values), fc1, relu2, fc2.
        assert_eq!(got.activations, [a[0], a[1], a[2], a[2], a[3], a[4], a[5]]);
        let g = f32s(&want["gradients"]);
        assert_eq!(got.gradients, [g[0], g[1], g[2], g[2], g[3], g[4], g[5]]);
        assert_eq!(
            (got.weights.clone(), got.weight_gradients.clone()),
            (f32s(&want["weights"]), f32s(&want["weight_gradients"]))
        );
    }

    // The momentum, tensor by tensor under the new names.
    let net = s.network();
    let velocity = |name: &str| net.delta(net.params().iter().position(|p| p.name == name).unwrap()).to_vec();
    let v = &old["velocity"];
    for (new, old_name) in [
        ("0.weight", "conv1.weight"),
        ("0.bias", "conv1.bias"),
        ("2.weight", "conv2.weight"),
        ("2.bias", "conv2.bias"),
        ("4.bias", "fc1.bias"),
        ("6.weight", "fc2.weight"),
        ("6.bias", "fc2.bias"),
    ] {
        assert_eq!(velocity(new), f32s(&v[old_name]), "{new} ({old_name})");
    }
    let fc1 = velocity("4.weight");
    assert_eq!(fc1[..16], f32s(&v["fc1.weight.first"]));
    assert_eq!(fc1.iter().map(|x| f64::from(*x)).sum::<f64>(), v["fc1.weight.sum"].as_f64().unwrap());
    assert!(fc1.iter().any(|x| *x != 0.0));

    // The same predictions as the old code, and the same next three steps.
    let n = old["test_images"].as_u64().unwrap() as usize;
    let (probs, predicted) = predictions(&mut s, n);
    let old_predicted: Vec<usize> =
        old["predicted"].as_array().unwrap().iter().map(|p| p.as_u64().unwrap() as usize).collect();
    assert_eq!(predicted, old_predicted);
    for (i, (got, want)) in probs.iter().zip(old["probs"].as_array().unwrap()).enumerate() {
        assert_same_bits(got, &f32s(want), &format!("probabilities of test image {i}"));
    }
    for want in old["continued"]["loss"].as_array().unwrap() {
        let p = s.step_batch(&mut |_, _| {}).unwrap();
        assert_eq!(p.step, want[0].as_u64().unwrap());
        assert_same_bits(&[p.loss], &[want[1].as_f64().unwrap() as f32], &format!("loss of step {}", p.step));
        assert_eq!(p.batch_accuracy, want[2].as_f64().unwrap() as f32, "step {}", p.step);
    }
    let (probs, predicted) = predictions(&mut s, n);
    let old_predicted: Vec<usize> =
        old["continued"]["predicted"].as_array().unwrap().iter().map(|p| p.as_u64().unwrap() as usize).collect();
    assert_eq!(predicted, old_predicted, "after three more steps");
    for (i, (got, want)) in probs.iter().zip(old["continued"]["probs"].as_array().unwrap()).enumerate() {
        assert_same_bits(got, &f32s(want), &format!("probabilities of test image {i} after three more steps"));
    }

    // Saved again, it is a v2 file that opens to the same state.
    let dir = tempfile::tempdir().unwrap();
    let again = dir.path().join("v2.safetensors");
    s.save_checkpoint(&again).unwrap();
    let opened = Session::open_checkpoint(sample(), &again, ConvEngine::Fast, None).unwrap();
    assert_eq!(state(&opened), state(&s));
    assert_eq!(opened.history(), s.history());
    let bytes = std::fs::read(&again).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    assert_eq!(header.metadata().as_ref().unwrap()["session_format"], checkpoint::SESSION_FORMAT);
}
