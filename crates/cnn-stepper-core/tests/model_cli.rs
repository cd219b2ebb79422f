//! `eval --model` and `bench --model`: any network, from a model file, an old post file or a
//! PyTorch state dict.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers may panic: that is the failure report.

mod common;

use std::path::Path;

use clap::Parser;
use cnn_stepper_core::cli::args::{Cli, Command};
use cnn_stepper_core::cli::{self, CliError};
use cnn_stepper_core::data;
use cnn_stepper_core::engine::model::{Plan, Sequential, Tensors, named, resolve};
use cnn_stepper_core::engine::weights::{self, ModelWeights, WeightsError, WeightsMeta};
use cnn_stepper_core::engine::{Activations, ConvEngine, Init, ModelConfig, Network, Params, Preset};
use safetensors::tensor::{Dtype, TensorView};

/// LeNet-5 trained a few steps on the folder's images, so that its accuracy is not chance.
fn trained_lenet(dir: &Path) -> Sequential<f32> {
    let plan = resolve("lenet5", (1, 28, 28), 10).unwrap();
    let mut net = Sequential::<f32>::new(plan, Init::He, 1, ConvEngine::Fast);
    let train = data::load_dir(dir, None).unwrap().train;
    let b = train.batch(&(0..train.len()).collect::<Vec<_>>()).unwrap();
    for _ in 0..5 {
        net.run_step(b.images.as_slice().unwrap(), &b.labels, &Preset::Recommended.hyper()).unwrap();
    }
    net
}

/// The tensors as PyTorch's `save_file` writes them: no metadata.
fn state_dict(w: &ModelWeights) -> Vec<u8> {
    let bytes: Vec<Vec<u8>> = w.tensors.iter().map(|t| t.data.iter().flat_map(|v| v.to_le_bytes()).collect()).collect();
    let views: Vec<(String, TensorView<'_>)> = w
        .tensors
        .iter()
        .zip(&bytes)
        .map(|(t, b)| (t.name.clone(), TensorView::new(Dtype::F32, t.shape.clone(), b).unwrap()))
        .collect();
    safetensors::serialize(views, None).unwrap()
}

/// `eval`'s accuracy and CSV for `file` with `model`.
fn eval(file: &Path, model: Option<&str>, dir: &Path) -> Result<(f32, String, String), CliError> {
    let csv = dir.join("pred.csv");
    let mut out = Vec::new();
    let acc = cli::eval_model(file, model, Some(dir), &data::LoadOptions::default(), Some(&csv), &mut out)?;
    Ok((acc, String::from_utf8(out).unwrap(), std::fs::read_to_string(&csv).unwrap()))
}

/// The accuracy of `net` on the folder's test set, computed directly, and each prediction.
fn direct_accuracy(net: &mut Sequential<f32>, dir: &Path) -> (f32, Vec<usize>) {
    let test = data::load_test_dir(dir, None).unwrap();
    let mut rows = Vec::new();
    let (correct, count) = cli::evaluate_model(net, &test, &mut Tensors::default(), Some(&mut rows)).unwrap();
    (correct as f32 / count as f32, rows.iter().map(|(_, p, _)| *p).collect())
}

fn predicted_column(csv: &str) -> Vec<usize> {
    csv.lines().skip(1).map(|l| l.split(',').nth(2).unwrap().parse().unwrap()).collect()
}

#[test]
fn eval_reads_a_model_file_without_model_and_reports_its_networks_accuracy() {
    let dir = tempfile::tempdir().unwrap();
    common::small_folder(dir.path(), 64);
    let mut net = trained_lenet(dir.path());
    let file = dir.path().join("lenet.safetensors");
    weights::save_model(&file, &ModelWeights::of(&net)).unwrap();

    let (acc, out, csv) = eval(&file, None, dir.path()).unwrap();
    let (want, predictions) = direct_accuracy(&mut net, dir.path());
    assert_eq!(acc, want);
    assert!(acc > 0.2, "five steps on the same 64 images beat chance: {acc}");
    assert!(out.starts_with(&format!("test accuracy: {:.2}% (", 100.0 * acc)), "{out}");
    assert!(
        csv.starts_with("index,label,predicted,p0,p1,p2,p3,p4,p5,p6,p7,p8,p9,label_name,predicted_name\n"),
        "{csv}"
    );
    assert_eq!(predicted_column(&csv), predictions);
    // The same network named on the command line is accepted.
    assert_eq!(eval(&file, Some("lenet5"), dir.path()).unwrap().0, acc);
}

#[test]
fn eval_with_model_reads_a_pytorch_state_dict_as_the_same_network() {
    let dir = tempfile::tempdir().unwrap();
    common::small_folder(dir.path(), 64);
    let net = trained_lenet(dir.path());
    let w = ModelWeights::of(&net);
    let ours = dir.path().join("lenet.safetensors");
    weights::save_model(&ours, &w).unwrap();
    let torch = dir.path().join("torch.safetensors");
    std::fs::write(&torch, state_dict(&w)).unwrap();

    let (acc, _, csv) = eval(&ours, None, dir.path()).unwrap();
    for model in ["lenet5", named("lenet5").unwrap().line] {
        let (torch_acc, _, torch_csv) = eval(&torch, Some(model), dir.path()).unwrap();
        assert_eq!((torch_acc, torch_csv.as_str()), (acc, csv.as_str()), "--model {model}");
    }
    // Without --model it is read as `post`, which it does not fit: the error says what to do.
    let err = eval(&torch, None, dir.path()).unwrap_err();
    assert!(matches!(err, CliError::Unnamed { .. }), "{err}");
    let message = err.to_string();
    assert!(message.starts_with(&torch.display().to_string()), "{message}");
    assert!(
        message.contains("missing tensor \"2.weight\"") && message.contains("give its line with --model"),
        "{message}"
    );
}

#[test]
fn eval_refuses_a_model_that_is_not_the_files_own_naming_both_lines() {
    let dir = tempfile::tempdir().unwrap();
    common::small_folder(dir.path(), 16);
    let plan = resolve("lenet5", (1, 28, 28), 10).unwrap();
    let file = dir.path().join("lenet.safetensors");
    weights::save_model(&file, &ModelWeights::of(&Sequential::new(plan, Init::He, 2, ConvEngine::Fast))).unwrap();
    let err = eval(&file, Some("post"), dir.path()).unwrap_err();
    assert!(matches!(err, CliError::Weights(WeightsError::ModelMismatch { .. })), "{err}");
    let message = err.to_string();
    assert!(
        message.contains(named("lenet5").unwrap().line) && message.contains(named("post").unwrap().line),
        "{message}"
    );
    // A line that does not read is refused with the layer.
    let err = eval(&file, Some("conv(6,5), relu, fc(10)"), dir.path()).unwrap_err();
    assert!(matches!(err, CliError::Model(_)), "{err}");
    assert_eq!(err.to_string(), "--model: layer 3 `fc(10)`: add `flatten` before the first fc");
}

#[test]
fn eval_of_an_old_post_file_gives_the_old_networks_accuracy() {
    let dir = tempfile::tempdir().unwrap();
    common::small_folder(dir.path(), 48);
    let cfg = ModelConfig::default();
    let params = Params::init(&cfg, Init::He, 3);
    let old = dir.path().join("old.safetensors");
    weights::save(&old, &params, &WeightsMeta::new(cfg)).unwrap();

    let test = data::load_test_dir(dir.path(), None).unwrap();
    // The old network's own predictions, image by image.
    let mut network = Network::with_params(cfg, params.clone(), ConvEngine::Fast).unwrap();
    let mut acts = Activations::default();
    let mut rows = Vec::new();
    for i in 0..test.len() {
        let b = test.batch(&[i]).unwrap();
        network.forward_into(b.images.as_slice().unwrap(), &b.labels, 0.0, &mut acts).unwrap();
        rows.push((b.labels[0], cnn_stepper_core::engine::argmax(&acts.probs)));
    }
    let correct = rows.iter().filter(|(y, p)| y == p).count();
    let want = correct as f32 / test.len() as f32;
    let (acc, _, csv) = eval(&old, None, dir.path()).unwrap();
    assert_eq!(acc, want);
    assert_eq!(predicted_column(&csv), rows.iter().map(|(_, p)| *p).collect::<Vec<_>>());

    // The same weights as a PyTorch state dict of the post's nn.Sequential: read as `post`
    // without --model, as before model lines.
    let loaded = weights::load_model(&old, None).unwrap();
    let torch = dir.path().join("torch.safetensors");
    std::fs::write(&torch, state_dict(&loaded.weights)).unwrap();
    assert_eq!(eval(&torch, None, dir.path()).unwrap().0, want);
}

#[test]
fn eval_refuses_a_network_for_other_images_naming_both_shapes() {
    let dir = tempfile::tempdir().unwrap();
    common::small_folder(dir.path(), 16);
    let plan = resolve("conv(2,3,pad=1), relu, maxpool(2), flatten, fc(10)", (1, 8, 8), 10).unwrap();
    let file = dir.path().join("small.safetensors");
    weights::save_model(&file, &ModelWeights::of(&Sequential::new(plan, Init::He, 1, ConvEngine::Fast))).unwrap();
    let err = eval(&file, None, dir.path()).unwrap_err();
    assert!(matches!(err, CliError::DoesNotFit { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!("{}: the network takes 1×8×8 images but {} has 1×28×28", file.display(), dir.path().display())
    );
}

fn bench_lines(model: &str, batches: &[usize], phases: bool) -> Vec<String> {
    let mut out = Vec::new();
    cli::bench_report(model, &[ConvEngine::Fast], batches, 1e-3, phases, &mut out).unwrap();
    String::from_utf8(out).unwrap().lines().map(String::from).collect()
}

#[test]
fn bench_prints_the_network_then_one_line_per_batch_size() {
    let lines = bench_lines("tiny", &[1, 2], false);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[0].starts_with(&format!("model tiny: {} on 1×28×28 images, ", named("tiny").unwrap().line)));
    assert!(lines[0].ends_with(" parameters"), "{}", lines[0]);
    for (line, b) in lines[1..].iter().zip([1, 2]) {
        assert!(line.starts_with(&format!("fast   batch {b:>3}: ")), "{line}");
        assert!(line.contains(" images/s (") && line.contains("GFLOP/s"), "{line}");
    }

    let line = "conv(4,5,stride=3), relu, flatten, fc(10)";
    let lines = bench_lines(line, &[1], true);
    assert!(lines[0].starts_with(&format!("model: {line} on 1×28×28 images, ")), "{}", lines[0]);
    // `         forward conv1        0.12 ms`: the label, then the time.
    let phases: Vec<&str> = lines[2..]
        .iter()
        .map(|l| l.trim().strip_suffix(" ms").and_then(|l| l.rsplit_once(' ')).unwrap().0.trim())
        .collect();
    assert_eq!(
        phases,
        [
            "forward conv1",
            "forward relu1",
            "forward flatten",
            "forward fc1",
            "loss",
            "backward loss",
            "backward fc1",
            "backward flatten",
            "backward relu1",
            "backward conv1",
            "update"
        ]
    );
}

#[test]
fn bench_refuses_a_network_that_does_not_fit_the_sample() {
    let err = cli::bench_plan("conv(4,5), flatten, fc(12)").unwrap_err();
    assert!(matches!(err, CliError::Model(_)), "{err}");
    assert!(err.to_string().contains("`fc(12)`") && err.to_string().contains("10 classes"), "{err}");
    let plan: Plan = resolve("conv(4,5), flatten, fc(3)", (1, 8, 8), 3).unwrap();
    let err = cli::bench_model(&plan, ConvEngine::Fast, 2, 0.01).unwrap_err();
    assert!(err.to_string().contains("embedded sample"), "{err}");
}

#[test]
fn the_flop_count_of_the_posts_line_is_the_posts() {
    let post = cli::bench_plan("post").unwrap();
    assert_eq!(cli::model_flops_per_image(&post), cli::flops_per_image(&ModelConfig::default()));
    // flatten first: fc1 sees the input, whose gradient no one needs (forward + weight gradient).
    let mlp = resolve("flatten, fc(10)", (1, 28, 28), 10).unwrap();
    assert_eq!(cli::model_flops_per_image(&mlp), 2.0 * 2.0 * 7840.0);
    let lenet = cli::bench_plan("lenet5").unwrap();
    let macs: Vec<f64> = lenet.layers.iter().filter(|l| l.spec.has_params()).map(|l| l.work_per_image as f64).collect();
    assert_eq!(cli::model_flops_per_image(&lenet), 2.0 * (2.0 * macs[0] + 3.0 * macs[1..].iter().sum::<f64>()));
}

#[test]
fn bench_and_eval_take_model_on_the_command_line() {
    let cli =
        Cli::try_parse_from(["cnn-stepper", "bench", "--model", "lenet5", "--engine", "fast", "--batch", "32", "128"])
            .unwrap();
    let Some(Command::Bench { model, engine, batch, .. }) = cli.command else { panic!("{:?}", cli.command) };
    assert_eq!((model.as_deref(), engine, batch), (Some("lenet5"), vec![ConvEngine::Fast], vec![32, 128]));

    let line = "conv(6,5,pad=2), relu, maxpool(2), flatten, fc(10)";
    let cli = Cli::try_parse_from(["cnn-stepper", "eval", "--weights", "w.safetensors", "--model", line]).unwrap();
    let Some(Command::Eval { model, .. }) = cli.command else { panic!("{:?}", cli.command) };
    assert_eq!(model.as_deref(), Some(line));

    let cli = Cli::try_parse_from(["cnn-stepper", "bench"]).unwrap();
    assert!(matches!(cli.command, Some(Command::Bench { model: None, .. })), "the default is post");

    let err = Cli::try_parse_from(["cnn-stepper", "eval", "--weights", "w", "--model", "conv(6,5), pool(2), fc(10)"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("layer 2 `pool(2)`") && err.contains("post, post-relu, lenet5, tiny"), "{err}");
}
