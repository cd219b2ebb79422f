//! `engine::model` against PyTorch: for small networks that together use every layer kind and
//! option, the logits, the loss, every parameter's gradient and the parameters after one and two
//! steps of SGD with momentum and of Adam are PyTorch's, in f64 and f32, on both engines.
//!
//! The fixtures come from `python3 scripts/pytorch_model_check.py fixture` (torch 2.15): each
//! `tests/fixtures/torch_model_<name>.safetensors` is a `torch.nn.Sequential`'s state dict after
//! `torch.manual_seed(0)`, and the `.json` beside it holds the line, the batch and PyTorch's
//! results computed in float32 and in float64 (from the same float32 weights and inputs).
//! The script's docstring says how the loss and the optimizers are defined.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers may panic: that is the failure report.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use cnn_stepper_core::engine::model::{LayerSpec, ModelSpec, Optimizer, Phase, Plan, Sequential, Shape, resolve};
use cnn_stepper_core::engine::{ConvEngine, Float, Hyper, Init, OptimizerKind, Real, argmax};
use safetensors::SafeTensors;
use safetensors::tensor::{Dtype, TensorView};

/// The networks of `scripts/pytorch_model_check.py`'s `FIXTURES_LINES`.
const FIXTURES: [&str; 5] = ["strided", "avg", "overlap", "remainder", "mlp"];

/// What the script wrote for one network.
#[derive(serde::Deserialize)]
struct Fixture {
    model: String,
    input_shape: Vec<usize>,
    classes: usize,
    inputs: Vec<f32>,
    labels: Vec<usize>,
    hyper: TorchHyper,
    param_names: Vec<String>,
    float32: Reference,
    float64: Reference,
}

#[derive(serde::Deserialize)]
struct TorchHyper {
    sgd_lr: f64,
    momentum: f64,
    adam_lr: f64,
    reg: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
}

/// PyTorch's results in one precision.
#[derive(serde::Deserialize)]
struct Reference {
    logits: Vec<Vec<f64>>,
    data_loss: f64,
    reg_loss: f64,
    loss: f64,
    grads: BTreeMap<String, Vec<f64>>,
    sgd: Vec<TorchStep>,
    adam: Vec<TorchStep>,
}

/// One training step: the loss before it and the parameters after it.
#[derive(serde::Deserialize)]
struct TorchStep {
    loss: f64,
    params: BTreeMap<String, Vec<f64>>,
}

/// The state dict: each tensor's shape and float32 values, by name.
type TorchTensors = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn load_fixture(name: &str) -> (Fixture, TorchTensors) {
    let json = fs::read_to_string(fixture_path(&format!("torch_model_{name}.json"))).unwrap();
    let fx: Fixture = serde_json::from_str(&json).unwrap();
    let bytes = fs::read(fixture_path(&format!("torch_model_{name}.safetensors"))).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let tensors = st
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            assert_eq!(view.dtype(), Dtype::F32, "{name}");
            let values = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            (name, (view.shape().to_vec(), values))
        })
        .collect();
    (fx, tensors)
}

/// The documented fixed batch: pixel i is ((i·37 + 11) mod 101) / 50 − 1 in f32.
fn fixed_inputs(len: usize) -> Vec<f32> {
    (0..len).map(|i| ((i * 37 + 11) % 101) as f32 / 50.0 - 1.0).collect()
}

fn plan_of(fx: &Fixture) -> Plan {
    let [_, c, h, w] = fx.input_shape[..] else { panic!("input shape {:?}", fx.input_shape) };
    ModelSpec::parse(&fx.model).unwrap().plan((c, h, w), fx.classes).unwrap()
}

/// Relative difference of `got` from `want`, value by value, where a value smaller than
/// `floor` × the tensor's largest counts against that (floor 1: relative to the largest value).
fn rel_diff(got: &[f64], want: &[f64], floor: f64) -> f64 {
    assert_eq!(got.len(), want.len());
    let floor = floor * want.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(f64::MIN_POSITIVE);
    got.iter().zip(want).map(|(g, w)| (g - w).abs() / w.abs().max(floor)).fold(0.0, f64::max)
}

/// The largest difference seen per kind of check, for the printout, and every failure.
#[derive(Default)]
struct Report {
    /// See [`rel_diff`].
    floor: f64,
    worst: BTreeMap<&'static str, f64>,
    failures: String,
}

impl Report {
    fn check(&mut self, kind: &'static str, what: &str, got: &[f64], want: &[f64], tol: f64) {
        let d = rel_diff(got, want, self.floor);
        let w = self.worst.entry(kind).or_insert(0.0);
        *w = w.max(d);
        if d.is_nan() || d > tol {
            let _ = writeln!(self.failures, "{what}: relative difference {d:.3e} > {tol:e}");
        }
    }
}

fn to_f64<T: Float>(v: &[T]) -> Vec<f64> {
    v.iter().map(|x| x.to_f64()).collect()
}

/// Builds the network with the fixture's parameters, loaded by name.
fn network<T: Float>(plan: &Plan, tensors: &TorchTensors, engine: ConvEngine) -> Sequential<T> {
    let mut net = Sequential::<T>::zeros(plan.clone(), engine);
    for (name, (_, values)) in tensors {
        let values: Vec<T> = values.iter().map(|v| <T as Real>::from_f32(*v)).collect();
        net.set_param(name, &values).unwrap();
    }
    net
}

/// Runs forward, loss and backward, one step of each optimizer and a second one on the same
/// batch, comparing each result with `want` within `tol` (tagged `label` in messages).
fn compare_with<T: Float>(
    name: &str,
    label: &str,
    fx: &Fixture,
    tensors: &TorchTensors,
    engine: ConvEngine,
    want: &Reference,
    tol: f64,
    report: &mut Report,
) {
    let plan = plan_of(fx);
    let x: Vec<T> = fx.inputs.iter().map(|v| <T as Real>::from_f32(*v)).collect();
    let y = &fx.labels;
    let at = |what: &str| format!("{name} {label} {engine:?}: {what}");
    let sgd_hyper = Hyper {
        lr: fx.hyper.sgd_lr as f32,
        momentum: fx.hyper.momentum as f32,
        reg: fx.hyper.reg as f32,
        lr_decay: 1.0,
        optimizer: OptimizerKind::Sgd,
    };

    // Forward, loss, backward: every phase before the update.
    let mut net = network::<T>(&plan, tensors, engine);
    net.load_batch(&x, y).unwrap();
    while net.next_phase() != Some(Phase::Update) {
        net.step_phase(&sgd_hyper, &mut |_, _| {}).unwrap();
    }
    let logits: Vec<f64> = want.logits.concat();
    report.check("logits", &at("logits"), &to_f64(net.tensors().scores()), &logits, tol);
    let t = net.tensors();
    report.check("loss", &at("data loss"), &[t.data_loss.to_f64()], &[want.data_loss], tol);
    report.check("loss", &at("L2 term"), &[t.reg_loss.to_f64()], &[want.reg_loss], tol);
    report.check("loss", &at("loss"), &[t.loss().to_f64()], &[want.loss], tol);
    for (i, p) in net.params().iter().enumerate() {
        let g = &want.grads[&p.name];
        report.check("gradients", &at(&format!("gradient of {}", p.name)), &to_f64(net.grad(i)), g, tol);
    }

    // SGD with momentum: this step's update, then a whole second step on the same batch.
    net.step_phase(&sgd_hyper, &mut |_, _| {}).unwrap();
    check_params(&net, &want.sgd[0], &at("SGD step 1"), "sgd step 1", tol, report);
    let loss = net.run_step(&x, y, &sgd_hyper).unwrap();
    report.check("sgd step 2", &at("SGD loss before step 2"), &[loss.to_f64()], &[want.sgd[1].loss], tol);
    check_params(&net, &want.sgd[1], &at("SGD step 2"), "sgd step 2", tol, report);

    // Adam, from the same start.
    assert_eq!(
        Optimizer::ADAM,
        Optimizer::Adam { beta1: fx.hyper.beta1, beta2: fx.hyper.beta2, eps: fx.hyper.eps },
        "the fixture's Adam constants are PyTorch's defaults"
    );
    let adam_hyper = Hyper { lr: fx.hyper.adam_lr as f32, ..sgd_hyper };
    let mut net = network::<T>(&plan, tensors, engine);
    net.optimizer = Optimizer::ADAM;
    for (step, want_step) in want.adam.iter().enumerate() {
        let loss = net.run_step(&x, y, &adam_hyper).unwrap();
        let kind = if step == 0 { "adam step 1" } else { "adam step 2" };
        report.check(
            kind,
            &at(&format!("Adam loss before step {}", step + 1)),
            &[loss.to_f64()],
            &[want_step.loss],
            tol,
        );
        check_params(&net, want_step, &at(&format!("Adam step {}", step + 1)), kind, tol, report);
    }
}

fn check_params<T: Float>(
    net: &Sequential<T>,
    want: &TorchStep,
    at: &str,
    kind: &'static str,
    tol: f64,
    report: &mut Report,
) {
    assert_eq!(net.params().len(), want.params.len(), "{at}");
    for p in net.params() {
        report.check(kind, &format!("{at}: {}", p.name), &to_f64(&p.data), &want.params[&p.name], tol);
    }
}

/// Checks one fixture's file against its plan, then both precisions on both engines; prints the
/// largest differences and panics with every failure.
fn check_against_torch(name: &str) {
    let (fx, tensors) = load_fixture(name);
    let plan = plan_of(&fx);

    // The file holds exactly the plan's tensors, with the plan's shapes, in state_dict order.
    let shapes = plan.param_shapes();
    assert_eq!(shapes.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(), fx.param_names, "{name}");
    for (tensor, shape) in &shapes {
        assert_eq!(&tensors[tensor].0, shape, "{name}: shape of {tensor}");
    }
    assert_eq!(tensors.len(), shapes.len(), "{name}");
    assert_eq!(
        fixed_inputs(fx.inputs.len()).iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        fx.inputs.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        "{name}: the documented input formula and the fixture disagree"
    );
    assert_eq!(fx.labels.len(), fx.input_shape[0], "{name}");

    // Against float64 PyTorch the f64 engine must agree to rounding, value by value (entries
    // under 1 % of their tensor's largest are differences of large terms: relative to that 1 %).
    // Against float32 PyTorch the reference carries its own rounding: PyTorch's float32 results
    // differ from its float64 ones by up to 6e-5 of a small entry (Adam's step on a near-zero
    // gradient, mlp) but under 2e-6 of each tensor's largest value, so there the difference is
    // relative to the tensor's largest value.
    let runs: [(&str, f64, f64); 3] =
        [("f64 vs torch f64", 1e-12, 0.01), ("f64 vs torch f32", 1e-5, 1.0), ("f32 vs torch f32", 1e-4, 1.0)];
    let mut failures = String::new();
    for (label, tol, floor) in runs {
        for engine in [ConvEngine::Naive, ConvEngine::Fast] {
            let mut report = Report { floor, ..Report::default() };
            match label {
                "f64 vs torch f64" => {
                    compare_with::<f64>(name, label, &fx, &tensors, engine, &fx.float64, tol, &mut report);
                }
                "f64 vs torch f32" => {
                    compare_with::<f64>(name, label, &fx, &tensors, engine, &fx.float32, tol, &mut report);
                }
                _ => compare_with::<f32>(name, label, &fx, &tensors, engine, &fx.float32, tol, &mut report),
            }
            let worst: Vec<String> = report.worst.iter().map(|(k, v)| format!("{k} {v:.1e}")).collect();
            println!("{name} {label} {engine:?} (tolerance {tol:e}): {}", worst.join(", "));
            failures.push_str(&report.failures);
        }
    }
    assert!(failures.is_empty(), "{name} differs from PyTorch:\n{failures}");
}

/// `conv(4,3,stride=2,pad=1), relu, maxpool(3,stride=2), conv(6,1), tanh, flatten, fc(8),
/// sigmoid, fc(3)` on 1×12×12: a strided padded conv, an overlapping max pool that never reads
/// the last row and column, a 1×1 conv, tanh and sigmoid.
#[test]
fn strided_padded_conv_overlapping_maxpool_and_1x1_conv_match_pytorch() {
    check_against_torch("strided");
}

/// `conv(5,3), sigmoid, avgpool(3), conv(4,1), relu, flatten, fc(6), tanh, fc(4)` on 3×10×10:
/// three input channels, an average pool whose window leaves two rows and columns unread.
#[test]
fn three_channel_input_and_avgpool_with_a_remainder_match_pytorch() {
    check_against_torch("avg");
}

/// `conv(3,5,pad=2), relu, avgpool(3,stride=2), conv(4,3,stride=2,pad=1), tanh,
/// maxpool(2,stride=1), flatten, fc(10), relu, fc(6), relu, fc(2)` on 1×12×12: an average pool
/// with stride ≠ window and a remainder, a max pool whose windows overlap, three fc.
#[test]
fn overlapping_pools_and_three_fc_match_pytorch() {
    check_against_torch("overlap");
}

/// `conv(6,4,stride=3), relu, maxpool(2), flatten, fc(5), sigmoid, fc(3)` on 3×10×10: a conv
/// whose stride leaves the last row and column unread, a max pool with a remainder.
#[test]
fn conv_and_maxpool_with_remainders_match_pytorch() {
    check_against_torch("remainder");
}

/// `flatten, fc(8), tanh, fc(5), sigmoid, fc(3)` on 2×4×4: flatten as the first layer.
#[test]
fn flatten_first_perceptron_matches_pytorch() {
    check_against_torch("mlp");
}

/// The fixtures between them use every layer kind, and each option the line allows.
#[test]
fn the_fixtures_cover_every_layer_kind_and_option() {
    let mut seen = BTreeSet::<String>::new();
    for name in FIXTURES {
        let plan = plan_of(&load_fixture(name).0);
        if plan.layers[0].spec == LayerSpec::Flatten {
            seen.insert("flatten first".into());
        }
        for l in &plan.layers {
            seen.insert(l.spec.kind().into());
            let (h, w) = match l.input {
                Shape::Maps { h, w, .. } => (h, w),
                Shape::Flat(_) => (0, 0),
            };
            let mut has = |yes: bool, what: &str| {
                if yes {
                    seen.insert(format!("{} {what}", l.spec.kind()));
                }
            };
            match l.spec {
                LayerSpec::Conv { k, stride, pad, .. } => {
                    has(stride > 1, "stride > 1");
                    has(pad > 0, "pad > 0");
                    has(k == 1, "1×1");
                    has((h + 2 * pad - k) % stride != 0, "remainder");
                }
                LayerSpec::MaxPool { k, stride } | LayerSpec::AvgPool { k, stride } => {
                    has((h - k) % stride != 0 || (w - k) % stride != 0, "remainder");
                    has(stride > k, "stride > window");
                    has(stride < k, "stride < window");
                }
                _ => {}
            }
        }
    }
    let wanted = [
        "conv",
        "maxpool",
        "avgpool",
        "relu",
        "tanh",
        "sigmoid",
        "flatten",
        "fc",
        "flatten first",
        "conv stride > 1",
        "conv pad > 0",
        "conv 1×1",
        "conv remainder",
        "maxpool remainder",
        "maxpool stride < window",
        "avgpool remainder",
        "avgpool stride < window",
    ];
    let missing: Vec<&str> = wanted.into_iter().filter(|k| !seen.contains(*k)).collect();
    assert!(missing.is_empty(), "no fixture has {missing:?}; they have {seen:?}");
}

/// The reverse direction, by hand: saves LeNet-5 on 1×28×28 and a line using the other kinds
/// and options on 3×20×20 (He init, seed 1) in PyTorch's names, with their logits on the fixed
/// inputs, for the script to compare.
///
/// ```text
/// cargo test -p cnn-stepper-core --test model_torch -- --ignored sequential_weights_for_pytorch
/// python3 scripts/pytorch_model_check.py check target/interop/lenet5.safetensors \
///     --model "$(cat target/interop/lenet5.line)" --input 1,28,28 --expect target/interop/lenet5_logits.json
/// python3 scripts/pytorch_model_check.py check target/interop/mixed.safetensors \
///     --model "$(cat target/interop/mixed.line)" --input 3,20,20 --expect target/interop/mixed_logits.json
/// ```
#[test]
#[ignore = "writes target/interop/ for scripts/pytorch_model_check.py; run by hand"]
fn sequential_weights_for_pytorch() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/interop");
    fs::create_dir_all(&dir).unwrap();
    let mixed = "conv(8,3,stride=2,pad=1), tanh, avgpool(3,stride=2), conv(8,1), sigmoid, maxpool(2), flatten, \
                 fc(16), relu, fc(4)";
    for (stem, line, input, classes) in [("lenet5", "lenet5", (1, 28, 28), 10), ("mixed", mixed, (3, 20, 20), 4)] {
        let plan = resolve(line, input, classes).unwrap();
        let net = Sequential::<f32>::new(plan.clone(), Init::He, 1, ConvEngine::Fast);

        // No weights writer for a Sequential yet: plain safetensors, little-endian f32.
        let bytes: Vec<Vec<u8>> =
            net.params().iter().map(|p| p.data.iter().flat_map(|v| v.to_le_bytes()).collect()).collect();
        let views: Vec<(String, TensorView<'_>)> = net
            .params()
            .iter()
            .zip(&bytes)
            .map(|(p, b)| (p.name.clone(), TensorView::new(Dtype::F32, p.shape.clone(), b).unwrap()))
            .collect();
        fs::write(dir.join(format!("{stem}.safetensors")), safetensors::serialize(views, None).unwrap()).unwrap();
        fs::write(dir.join(format!("{stem}.line")), plan.spec.to_string()).unwrap();

        let n = 4;
        let inputs = fixed_inputs(n * plan.input.len());
        let mut scores = Vec::new();
        for engine in [ConvEngine::Naive, ConvEngine::Fast] {
            let mut net = Sequential::<f32>::new(plan.clone(), Init::He, 1, engine);
            let mut out = Default::default();
            net.forward_into(&inputs, &vec![0; n], 0.0, &mut out).unwrap();
            scores.push(out.scores().to_vec());
        }
        let engine_diff = scores[0].iter().zip(&scores[1]).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        let rows: Vec<Vec<f32>> = scores[1].chunks(plan.classes).map(<[f32]>::to_vec).collect();
        let classes: Vec<usize> = rows.iter().map(|r| argmax(r)).collect();
        let json = serde_json::json!({
            "model": plan.spec.to_string(),
            "engine": "fast",
            "max_naive_fast_diff": engine_diff,
            "input_shape": [n, input.0, input.1, input.2],
            "inputs": inputs,
            "logits": rows,
            "classes": classes,
        });
        fs::write(dir.join(format!("{stem}_logits.json")), serde_json::to_string_pretty(&json).unwrap()).unwrap();
        println!("{}: classes {classes:?}, naive vs fast max diff {engine_diff:e}", plan.spec);
    }
}
