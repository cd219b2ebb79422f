//! Model files and PyTorch, both ways.
//!
//! PyTorch → cnn-stepper: `tests/fixtures/torch_file_<name>.safetensors` are state dicts saved
//! with `safetensors.torch.save_file` (no metadata) by `python3 scripts/pytorch_model_check.py
//! files` (torch 2.15), with PyTorch's logits beside them; `weights::load_model`, given the line
//! as `eval --model` gives it, must predict the same logits to 1e-4 on both engines. The engine
//! fixtures `torch_model_<name>` (see `tests/model_torch.rs`) are read the same way.
//!
//! cnn-stepper → PyTorch: a model file this crate writes loads into the equivalent
//! `torch.nn.Sequential` with `load_state_dict(strict=True)`, the line and input read from its
//! metadata, and gives our logits (the script's `check` mode). That test runs only where
//! `python3` can import torch, safetensors and numpy; elsewhere it says so and passes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers may panic: that is the failure report.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use cnn_stepper_core::engine::model::{Plan, Sequential, Tensors, named, resolve};
use cnn_stepper_core::engine::npz;
use cnn_stepper_core::engine::weights::{self, Integrity, ModelMeta, ModelWeights, Origin, WeightsError};
use cnn_stepper_core::engine::{ConvEngine, Init, argmax};

/// What the script wrote beside a state dict (the `float32` part of the engine fixtures).
#[derive(serde::Deserialize)]
struct TorchFile {
    model: String,
    input_shape: Vec<usize>,
    classes: usize,
    #[serde(default)]
    logits: Vec<Vec<f32>>,
    #[serde(default)]
    predicted: Vec<usize>,
    float32: Option<Float32>,
}

#[derive(serde::Deserialize)]
struct Float32 {
    logits: Vec<Vec<f32>>,
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// The documented fixed batch: pixel i is ((i·37 + 11) mod 101) / 50 − 1 in f32.
fn fixed_inputs(len: usize) -> Vec<f32> {
    (0..len).map(|i| ((i * 37 + 11) % 101) as f32 / 50.0 - 1.0).collect()
}

fn read_fixture(stem: &str) -> (TorchFile, Plan) {
    let fx: TorchFile = serde_json::from_str(&fs::read_to_string(fixture(&format!("{stem}.json"))).unwrap()).unwrap();
    let [_, c, h, w] = fx.input_shape[..] else { panic!("{stem}: input shape {:?}", fx.input_shape) };
    let plan = resolve(&fx.model, (c, h, w), fx.classes).unwrap();
    (fx, plan)
}

/// Loads `<stem>.safetensors` with its line and compares the logits on both engines with
/// `logits` within 1e-4·(1 + |logit|); the predicted classes with `predicted` if given.
fn predicts_like_pytorch(stem: &str, plan: &Plan, logits: &[Vec<f32>], predicted: &[usize]) {
    let path = fixture(&format!("{stem}.safetensors"));
    let err = weights::load_model(&path, None).unwrap_err();
    assert!(matches!(err, WeightsError::NoModelLine { .. }), "{stem}: {err}");
    let loaded = weights::load_model(&path, Some(plan)).unwrap();
    assert_eq!((loaded.origin, loaded.integrity), (Origin::StateDict, Integrity::Unchecked), "{stem}");
    let names: Vec<&str> = loaded.weights.tensors.iter().map(|t| t.name.as_str()).collect();
    let want: Vec<String> = plan.param_shapes().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, want, "{stem}");

    let n = logits.len();
    let inputs = fixed_inputs(n * plan.input.len());
    for engine in [ConvEngine::Naive, ConvEngine::Fast] {
        let mut net = loaded.sequential(engine).unwrap();
        let mut out = Tensors::default();
        net.forward_into(&inputs, &vec![0; n], 0.0, &mut out).unwrap();
        let mut max_diff = 0.0f32;
        for (i, (got, want)) in out.scores().chunks(plan.classes).zip(logits).enumerate() {
            for (g, w) in got.iter().zip(want) {
                max_diff = max_diff.max((g - w).abs());
                assert!(
                    (g - w).abs() <= 1e-4 * (1.0 + w.abs()),
                    "{stem} {engine:?} image {i}: {got:?} vs torch {want:?}"
                );
            }
            if let Some(p) = predicted.get(i) {
                assert_eq!(argmax(got), *p, "{stem} {engine:?} image {i}");
            }
        }
        println!("{stem} {engine:?}: max |rust - torch| = {max_diff:e}");
    }
}

/// `conv(4,3,stride=2,pad=1), tanh, maxpool(2), conv(5,3,pad=1), sigmoid, avgpool(2,stride=1),
/// flatten, fc(6), relu, fc(3)` on 1×12×12: every layer kind, a conv with stride and padding.
#[test]
fn every_layer_kind_from_a_pytorch_state_dict_predicts_pytorchs_logits() {
    let (fx, plan) = read_fixture("torch_file_kinds");
    let kinds: Vec<&str> = plan.layers.iter().map(|l| l.spec.kind()).collect();
    for kind in ["conv", "maxpool", "avgpool", "relu", "tanh", "sigmoid", "flatten", "fc"] {
        assert!(kinds.contains(&kind), "the fixture has no {kind}: {kinds:?}");
    }
    predicts_like_pytorch("torch_file_kinds", &plan, &fx.logits, &fx.predicted);
}

/// LeNet-5 on 1×28×28 as PyTorch initialises it, read with `--model lenet5`.
#[test]
fn lenet5_from_a_pytorch_state_dict_predicts_pytorchs_logits() {
    let (fx, plan) = read_fixture("torch_file_lenet5");
    let by_name = resolve("lenet5", (1, 28, 28), 10).unwrap();
    assert_eq!(by_name, plan, "the fixture's line is the named network's");
    assert_eq!(fx.model, named("lenet5").unwrap().line);
    predicts_like_pytorch("torch_file_lenet5", &by_name, &fx.logits, &fx.predicted);
}

/// The engine's PyTorch fixtures (strided and 1×1 convs, pools with remainders and overlaps,
/// three-channel inputs, an MLP) are state dicts too: read through `load_model`, they give
/// PyTorch's float32 logits.
#[test]
fn the_engine_fixtures_load_through_load_model_and_predict_pytorchs_logits() {
    for name in ["strided", "avg", "overlap", "remainder", "mlp"] {
        let stem = format!("torch_model_{name}");
        let (fx, plan) = read_fixture(&stem);
        let logits = fx.float32.unwrap().logits;
        assert_eq!(logits.len(), fx.input_shape[0]);
        predicts_like_pytorch(&stem, &plan, &logits, &[]);
    }
}

#[test]
fn a_pytorch_state_dict_read_as_another_line_names_the_tensor_with_both_shapes() {
    let path = fixture("torch_file_kinds.safetensors");
    let other = resolve(
        "conv(6,3,stride=2,pad=1), tanh, maxpool(2), conv(5,3,pad=1), sigmoid, avgpool(2,stride=1), flatten, fc(6), \
         relu, fc(3)",
        (1, 12, 12),
        3,
    )
    .unwrap();
    let err = weights::load_model(&path, Some(&other)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}: tensor \"0.weight\" has shape [4, 1, 3, 3] but this network needs [6, 1, 3, 3]", path.display())
    );
    let lenet = resolve("lenet5", (1, 12, 12), 3).unwrap();
    let err = weights::load_model(&path, Some(&lenet)).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, WeightsError::Names { .. }), "{message}");
    // LeNet's tensors are at 0, 3, 7, 9 and 11; this file's at 0, 3, 7 and 9.
    assert!(message.ends_with("missing tensor \"11.weight\"; missing tensor \"11.bias\""), "{message}");
}

/// True if `python3` can import what the script needs.
fn torch_available() -> bool {
    Command::new("python3").args(["-c", "import torch, safetensors, numpy"]).output().is_ok_and(|o| o.status.success())
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pytorch_model_check.py")
}

/// Runs `python3 args…`, failing the test with its output unless it succeeds; returns stdout.
fn python(args: &[&str]) -> String {
    let out = Command::new("python3").args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "python3 {args:?} failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

#[test]
fn our_model_files_load_in_pytorch_and_predict_our_logits() {
    if !torch_available() {
        println!("skipped: python3 cannot import torch, safetensors and numpy");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mixed = "conv(8,3,stride=2,pad=1), tanh, avgpool(3,stride=2), conv(8,1), sigmoid, maxpool(2), flatten, \
                 fc(16), relu, fc(4)";
    let digits: Vec<String> = (0..10).map(|d| d.to_string()).collect();
    let animals: Vec<String> = ["cat", "dog", "emu", "yak"].map(String::from).to_vec();
    for (stem, line, input, names) in
        [("lenet5", "lenet5", (1, 28, 28), digits), ("mixed", mixed, (3, 20, 20), animals)]
    {
        let plan = resolve(line, input, names.len()).unwrap();
        let net = Sequential::<f32>::new(plan.clone(), Init::He, 1, ConvEngine::Fast);
        let mut w = ModelWeights::of(&net);
        w.class_names = names.clone();
        w.meta = ModelMeta { preset: Some("recommended".into()), seed: Some(1), step: Some(0) };
        let file = dir.path().join(format!("{stem}.safetensors"));
        weights::save_model(&file, &w).unwrap();

        let n = 4;
        let inputs = fixed_inputs(n * plan.input.len());
        let mut net = weights::load_model(&file, None).unwrap().sequential(ConvEngine::Fast).unwrap();
        let mut out = Tensors::default();
        net.forward_into(&inputs, &vec![0; n], 0.0, &mut out).unwrap();
        let rows: Vec<Vec<f32>> = out.scores().chunks(plan.classes).map(<[f32]>::to_vec).collect();
        let classes: Vec<usize> = rows.iter().map(|r| argmax(r)).collect();
        let expect = dir.path().join(format!("{stem}_logits.json"));
        let json = serde_json::json!({ "inputs": inputs, "logits": rows, "classes": classes });
        fs::write(&expect, serde_json::to_string(&json).unwrap()).unwrap();

        // No --model and no --input: the script reads both from the file's metadata.
        let stdout = python(&[
            &script().to_string_lossy(),
            "check",
            &file.to_string_lossy(),
            "--expect",
            &expect.to_string_lossy(),
        ]);
        assert!(stdout.lines().any(|l| l == "OK"), "{stem}: {stdout}");
        assert!(stdout.contains(&format!("classes: {:?}", names).replace('"', "'")), "{stem}: {stdout}");

        // The .npz: numpy reads every member under the documented name and shape.
        let npz_path = dir.path().join(format!("{stem}.npz"));
        npz::save_model(&npz_path, &plan, &w.tensors).unwrap();
        let shapes: serde_json::Map<String, serde_json::Value> = npz::model_names(&plan)
            .into_iter()
            .map(|n| {
                let mut shape = w.tensor(&n.tensor).unwrap().shape.clone();
                if n.transposed {
                    shape.reverse();
                }
                (n.npz, serde_json::json!(shape))
            })
            .collect();
        let check = "import json, sys, numpy as np\n\
                     z = np.load(sys.argv[1]); want = json.loads(sys.argv[2])\n\
                     assert sorted(z.files) == sorted(want), (z.files, list(want))\n\
                     for k, s in want.items():\n    assert list(z[k].shape) == s and z[k].dtype == np.float32, (k, z[k].shape)\n\
                     print('OK')";
        let stdout = python(&["-c", check, &npz_path.to_string_lossy(), &serde_json::to_string(&shapes).unwrap()]);
        assert_eq!(stdout.trim(), "OK", "{stem}");
    }
}
