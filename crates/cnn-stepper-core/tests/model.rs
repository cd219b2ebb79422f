//! Any small CNN (`engine::model`): the model line and its messages, shapes against the data,
//! the named networks, finite-difference gradient checks of every layer kind and of whole
//! networks, naive ≡ fast, determinism, Adam, and equivalence with the post's `Network`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers may panic: that is the failure report.

use cnn_stepper_core::engine::conv::ConvWorkspace;
use cnn_stepper_core::engine::model::layers::activation::{self, Activation};
use cnn_stepper_core::engine::model::layers::{conv, linear, pool};
use cnn_stepper_core::engine::model::optim::{AdamState, adam_step};
use cnn_stepper_core::engine::model::{
    LayerSpec, ModelSpec, NAMED, Optimizer, Phase, Plan, Sequential, Shape, Tensors, named, resolve,
};
use cnn_stepper_core::engine::{ConvEngine, Float, Hyper, Init, ModelConfig, Network, OptimizerKind, Params, Real};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

// ---------------------------------------------------------------------------------------------
// The line

fn err(line: &str, input: (usize, usize, usize), classes: usize) -> String {
    match ModelSpec::parse(line).and_then(|s| s.plan(input, classes)) {
        Ok(_) => panic!("{line:?} was accepted"),
        Err(e) => e.to_string(),
    }
}

fn parse_err(line: &str) -> String {
    match ModelSpec::parse(line) {
        Ok(s) => panic!("{line:?} parsed as {s}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn named_lines_round_trip_through_display() {
    for m in NAMED {
        let spec = ModelSpec::parse(m.line).unwrap();
        assert_eq!(spec.to_string(), m.line, "{} is written canonically", m.name);
        assert_eq!(ModelSpec::parse(&spec.to_string()).unwrap(), spec);
    }
}

#[test]
fn spaces_case_and_defaults_are_optional() {
    let spec = ModelSpec::parse(
        "  CONV( 16 , 5 , PAD = 2 , stride=1) ,ReLU,maxpool(2,stride=2),avgpool(3, stride=1),flatten(),fc(10) ",
    )
    .unwrap();
    assert_eq!(
        spec.layers,
        vec![
            LayerSpec::Conv { filters: 16, k: 5, stride: 1, pad: 2 },
            LayerSpec::Relu,
            LayerSpec::MaxPool { k: 2, stride: 2 },
            LayerSpec::AvgPool { k: 3, stride: 1 },
            LayerSpec::Flatten,
            LayerSpec::Fc { out: 10 },
        ]
    );
    assert_eq!(spec.to_string(), "conv(16,5,pad=2), relu, maxpool(2), avgpool(3,stride=1), flatten, fc(10)");
}

#[test]
fn fc_on_maps_asks_for_flatten_and_names_the_layer() {
    let e = err("conv(16,5), relu, maxpool(2), conv(32,3), fc(100), relu, fc(10)", (1, 28, 28), 10);
    assert!(e.contains("layer 5 `fc(100)`: add `flatten` before the first fc"), "{e}");
}

#[test]
fn a_pool_larger_than_its_input_says_so() {
    let e = err("conv(2,5), relu, maxpool(4), flatten, fc(10)", (1, 7, 7), 10);
    assert!(e.contains("layer 3 `maxpool(4)`: its input is 3×3, smaller than the window"), "{e}");
}

#[test]
fn the_last_fc_must_give_one_score_per_class() {
    let e = err("flatten, fc(12)", (1, 28, 28), 10);
    assert!(e.contains("`fc(12)`") && e.contains("last") && e.contains("10 classes"), "{e}");
    assert!(e.contains("layer 2"), "{e}");
}

#[test]
fn a_line_must_end_in_fc() {
    let e = err("flatten, fc(10), relu", (1, 28, 28), 10);
    assert!(e.contains("layer 3 `relu`") && e.contains("must end in `fc(10)`"), "{e}");
}

#[test]
fn conv_and_pool_after_flatten_are_refused() {
    let e = err("flatten, conv(4,3), fc(10)", (1, 8, 8), 10);
    assert!(e.contains("layer 2 `conv(4,3)`") && e.contains("after `flatten` (layer 1)"), "{e}");
    let e = err("relu, flatten, avgpool(2), fc(10)", (1, 8, 8), 10);
    assert!(e.contains("layer 3 `avgpool(2)`") && e.contains("after `flatten`"), "{e}");
    let e = err("flatten, flatten, fc(10)", (1, 8, 8), 10);
    assert!(e.contains("layer 2 `flatten`") && e.contains("already flat"), "{e}");
}

#[test]
fn a_kernel_larger_than_the_padded_input_is_refused() {
    let e = err("conv(4,7,pad=1), flatten, fc(10)", (1, 4, 4), 10);
    assert!(e.contains("layer 1 `conv(4,7,pad=1)`") && e.contains("4×4 (6×6 with padding 1)"), "{e}");
    assert!(e.contains("smaller than the 7×7 kernel"), "{e}");
}

#[test]
fn an_empty_line_is_refused() {
    for line in ["", "   "] {
        let e = parse_err(line);
        assert!(e.contains("empty"), "{e}");
    }
    let e = ModelSpec::default().plan((1, 28, 28), 10).unwrap_err().to_string();
    assert!(e.contains("empty") && e.contains("fc(10)"), "{e}");
}

#[test]
fn an_unknown_layer_gets_the_closest_name() {
    let e = parse_err("conw(16,5), flatten, fc(10)");
    assert!(e.contains("layer 1 `conw(16,5)`") && e.contains("did you mean `conv`"), "{e}");
    let e = parse_err("flatten, linear(10)");
    assert!(e.contains("layer 2") && e.contains("did you mean `fc`"), "{e}");
    let e = parse_err("flatten, xyzzyplugh, fc(10)");
    assert!(e.contains("unknown layer `xyzzyplugh`") && e.contains("known: conv, maxpool"), "{e}");
}

#[test]
fn numbers_out_of_range_say_the_range() {
    let e = parse_err("conv(0,5), flatten, fc(10)");
    assert!(e.contains("layer 1 `conv(0,5)`: filters must be a whole number from 1 to 512, not 0"), "{e}");
    let e = parse_err("conv(4,5), flatten, fc(99999999999999999999999999)");
    assert!(e.contains("layer 3") && e.contains("outputs must be a whole number from 1 to 4096"), "{e}");
    let e = parse_err("conv(4,13)");
    assert!(e.contains("kernel size must be a whole number from 1 to 11, not 13"), "{e}");
    let e = parse_err("conv(4,3,stride=0)");
    assert!(e.contains("stride must be a whole number from 1 to 16, not 0"), "{e}");
    let e = parse_err("maxpool(2,stride=99)");
    assert!(e.contains("stride must be a whole number from 1 to 16, not 99"), "{e}");
    let e = parse_err("conv(4,3,pad=-1)");
    assert!(e.contains("`-1` is not a number: pad must be a whole number from 0 to 10"), "{e}");
}

#[test]
fn missing_and_malformed_arguments_are_named() {
    let cases = [
        ("conv(16)", "layer 1 `conv(16)`: missing numbers"),
        ("conv", "layer 1 `conv`: missing numbers"),
        ("fc(1,2)", "too many numbers"),
        ("conv(16,5,foo=1)", "unknown setting `foo`: `conv` knows `stride` and `pad`"),
        ("conv(16,5,pad=1,pad=2)", "`pad` is given twice"),
        ("conv(16,5,pad=x)", "`x` is not a number"),
        ("conv(16,pad=1,5)", "a number after a `name=value`"),
        ("conv(16,,5)", "an empty number"),
        ("relu(3), fc(1)", "`relu` takes no numbers"),
        ("flatten, fc(10", "layer 2 `fc(10`: the `(` is never closed"),
        ("flatten, fc(10))", "`)` without a `(`"),
        ("relu,,fc(10)", "layer 2: no layer between two commas"),
        ("relu, fc(10),", "layer 3: no layer between two commas"),
        ("fc(1) x", "text after the closing `)`"),
        ("fc((1))", "parentheses inside parentheses"),
        ("fc(=3)", "has no name before the `=`"),
    ];
    for (line, want) in cases {
        let e = parse_err(line);
        assert!(e.contains(want), "{line:?}: {e}");
    }
}

#[test]
fn size_limits_stop_a_typo_from_allocating_gigabytes() {
    let many = vec!["relu"; 33].join(",");
    assert!(parse_err(&many).contains("at most 32"));
    let e = err("flatten, fc(4096), fc(10)", (64, 256, 256), 10);
    assert!(e.contains("layer 2 `fc(4096)`") && e.contains("at most"), "{e}");
    let e = err("conv(512,3,pad=1), conv(512,3,pad=1), flatten, fc(10)", (1, 64, 64), 10);
    assert!(e.contains("values per image") && e.contains("at most"), "{e}");
    let long = "relu,".repeat(1000);
    assert!(parse_err(&long).contains("longer than"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn the_parser_never_panics_on_any_text(line in "\\PC{0,80}") {
        if let Ok(spec) = ModelSpec::parse(&line) {
            prop_assert_eq!(ModelSpec::parse(&spec.to_string()).unwrap(), spec.clone());
            let _ = spec.plan((1, 28, 28), 10);
        }
    }

    #[test]
    fn the_parser_never_panics_on_mutated_lines(
        which in 0..NAMED.len(),
        edits in prop::collection::vec((0usize..200, 0usize..3, prop::sample::select(vec![
            '(', ')', ',', '=', ' ', '0', '1', '9', 'x', 'é', '-', 'k', 's',
        ])), 1..6),
    ) {
        let mut chars: Vec<char> = NAMED[which].line.chars().collect();
        for (at, op, ch) in edits {
            let at = at % (chars.len() + 1);
            match op {
                0 => chars.insert(at, ch),
                1 if at < chars.len() => { chars.remove(at); }
                _ if at < chars.len() => chars[at] = ch,
                _ => chars.push(ch),
            }
        }
        let line: String = chars.into_iter().collect();
        match ModelSpec::parse(&line) {
            Ok(spec) => {
                prop_assert_eq!(ModelSpec::parse(&spec.to_string()).unwrap(), spec.clone());
                let _ = spec.plan((1, 28, 28), 10);
                let _ = spec.plan((3, 5, 2), 4);
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn random_specs_round_trip(layers in prop::collection::vec(layer_strategy(), 1..12)) {
        let spec = ModelSpec { layers };
        prop_assert_eq!(ModelSpec::parse(&spec.to_string()).unwrap(), spec);
    }
}

fn layer_strategy() -> impl Strategy<Value = LayerSpec> {
    prop_oneof![
        (1usize..=512, 1usize..=11, 1usize..=16, 0usize..=10).prop_map(|(filters, k, stride, pad)| LayerSpec::Conv {
            filters,
            k,
            stride,
            pad
        }),
        (1usize..=11, 1usize..=16).prop_map(|(k, stride)| LayerSpec::MaxPool { k, stride }),
        (1usize..=11, 1usize..=16).prop_map(|(k, stride)| LayerSpec::AvgPool { k, stride }),
        Just(LayerSpec::Relu),
        Just(LayerSpec::Tanh),
        Just(LayerSpec::Sigmoid),
        Just(LayerSpec::Flatten),
        (1usize..=4096).prop_map(|out| LayerSpec::Fc { out }),
    ]
}

// ---------------------------------------------------------------------------------------------
// Shapes, names, named networks

#[test]
fn lenet5_has_the_student_names_shapes_and_pytorch_indices() {
    let plan = resolve("lenet5", (1, 28, 28), 10).unwrap();
    let names: Vec<&str> = plan.layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        names,
        ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "flatten", "fc1", "relu3", "fc2", "relu4", "fc3"]
    );
    let outs: Vec<String> = plan.layers.iter().map(|l| l.output.to_string()).collect();
    assert_eq!(
        outs,
        ["6×28×28", "6×28×28", "6×14×14", "16×10×10", "16×10×10", "16×5×5", "400", "120", "120", "84", "84", "10"]
    );
    let tensors: Vec<String> = plan.param_shapes().into_iter().map(|(n, _)| n).collect();
    let want: Vec<String> =
        [0, 3, 7, 9, 11].iter().flat_map(|i| [format!("{i}.weight"), format!("{i}.bias")]).collect();
    assert_eq!(tensors, want);
    assert_eq!(plan.total_params(), 61_706);
    // 2·6·784 + 6·196 + 2·16·100 + 16·25 + 2·120 + 2·84 + 10 (flatten shares its input).
    assert_eq!(plan.values_per_image(), 14_602);
    assert_eq!(plan.bytes_per_step(2, 4), (2 * (784 + 2 * 14_602) + 3 * 61_706) * 4);
    // conv2: 16×10×10 outputs, 6·5·5 multiply-adds each.
    assert_eq!(plan.layer_named("conv2").unwrap().work_per_image, 16 * 100 * 150);
}

#[test]
fn named_post_is_todays_default_network() {
    for (name, relu) in [("post", false), ("post-relu", true)] {
        let cfg = ModelConfig { relu_after_conv2: relu, ..ModelConfig::default() };
        let plan = resolve(name, (cfg.in_channels, cfg.in_height, cfg.in_width), cfg.classes).unwrap();
        let shapes: Vec<Vec<usize>> = plan.param_shapes().into_iter().map(|(_, s)| s).collect();
        assert_eq!(shapes, Params::<f32>::shapes(&cfg).to_vec(), "{name}");
        assert_eq!(plan.layer_named("fc1").unwrap().input, Shape::Flat(cfg.flat_len()));
    }
}

#[test]
fn a_named_network_takes_the_datas_channels_and_classes() {
    let plan = resolve("LeNet5", (3, 32, 32), 100).unwrap();
    assert_eq!(plan.param_shapes()[0].1, vec![6, 3, 5, 5]);
    assert_eq!(plan.layers.last().unwrap().output, Shape::Flat(100));
    assert_eq!(plan.spec.layers.last(), Some(&LayerSpec::Fc { out: 100 }));
    let e = resolve("lenet5", (1, 8, 8), 10).unwrap_err().to_string();
    assert!(e.contains("lenet5") && e.contains("layer 4 `conv(16,5)`: its input is 4×4"), "{e}");
    assert!(named("tiny").is_some() && named("nope").is_none());
    // A user's line must match the data as written.
    let e = resolve("flatten, fc(10)", (1, 28, 28), 4).unwrap_err().to_string();
    assert!(e.contains("4 classes"), "{e}");
}

#[test]
fn phase_texts_come_from_the_layer_and_its_numbers() {
    let plan = resolve("lenet5", (1, 28, 28), 10).unwrap();
    let phases = plan.phases();
    assert_eq!(phases.len(), 12 + 2 + 12 + 1);
    assert_eq!(phases[12], Phase::Loss);
    assert_eq!(phases[14], Phase::Backward(11));
    let sgd = Optimizer::Sgd;
    assert_eq!(
        plan.phase_sentence(Phase::Forward(3), sgd),
        "conv2: 6×14×14 → 16×10×10, 16 filters of 6×5×5, stride 1, pad 0."
    );
    assert_eq!(
        plan.phase_sentence(Phase::Forward(2), sgd),
        "pool1: 6×28×28 → 6×14×14, the largest value of each 2×2 window, stride 2."
    );
    assert_eq!(plan.phase_label(Phase::Backward(7)), "backward fc1");
    assert_eq!(plan.phase_formula(Phase::Forward(7), sgd), "fc1 = flatten·Wᵀ + b");
    assert_eq!(plan.phase_formula(Phase::Backward(4), sgd), "dconv2 = drelu2 ⊙ [conv2 > 0]");
    assert!(plan.phase_formula(Phase::Update, Optimizer::ADAM).contains("√v̂"));
    for p in phases {
        assert!(!plan.phase_formula(p, sgd).is_empty() && !plan.phase_sentence(p, sgd).is_empty(), "{p:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Finite-difference gradient checks of each layer kind (f64)

/// Small enough that the curvature of tanh and sigmoid is far below the tolerance, large enough
/// that the rounding of a loss of ~100 (≈1e-14) divided by 2h stays below 1e-9.
const H: f64 = 1e-5;

fn random(len: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
    (0..len).map(|_| rng.random::<f64>() * 2.0 - 1.0).collect()
}

/// Checks `grad` (the analytic ∂/∂v of `f` at `v`) against central differences for every
/// element of `v`.
fn check(what: &str, v: &mut [f64], grad: &[f64], mut f: impl FnMut(&[f64]) -> f64) {
    assert_eq!(v.len(), grad.len(), "{what}: gradient length");
    for i in 0..v.len() {
        let keep = v[i];
        v[i] = keep + H;
        let up = f(v);
        v[i] = keep - H;
        let down = f(v);
        v[i] = keep;
        let numeric = (up - down) / (2.0 * H);
        let scale = numeric.abs().max(grad[i].abs());
        assert!(
            (numeric - grad[i]).abs() <= 1e-6 * scale + 1e-8,
            "{what}[{i}]: analytic {} numeric {numeric}",
            grad[i]
        );
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn conv_gradients_match_finite_differences_for_strides_and_padding() {
    // (c, h, w, filters, k, stride, pad): strided with remainders, padded, both, 1×1, wide.
    let cases = [
        (2, 7, 6, 3, 3, 2, 0),
        (1, 5, 5, 2, 3, 1, 1),
        (3, 8, 7, 2, 3, 3, 2),
        (2, 4, 4, 2, 1, 1, 0),
        (4, 6, 6, 2, 5, 1, 2),
        (2, 5, 9, 3, 4, 2, 1),
    ];
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for (c, h, w, f, k, stride, pad) in cases {
        for engine in [ConvEngine::Naive, ConvEngine::Fast] {
            let what = format!("conv c{c} {h}×{w} f{f} k{k} s{stride} p{pad} {engine:?}");
            let s = conv::shape(2, Shape::Maps { c, h, w }, f, k, stride, pad);
            let (mut x, mut wt, mut b) =
                (random(s.n * s.in_len(), &mut rng), random(f * c * k * k, &mut rng), random(f, &mut rng));
            let dy = random(s.n * s.out_len(), &mut rng);
            let mut ws = ConvWorkspace::default();
            let (mut dw, mut db, mut dx) = (vec![0.0; wt.len()], vec![0.0; f], vec![0.0; x.len()]);
            let never = || false;
            let ran = conv::backward(
                engine,
                &s,
                &x,
                &wt,
                &dy,
                &mut dw,
                &mut db,
                Some(&mut dx),
                &mut ws,
                &mut |_, _| {},
                &never,
            );
            assert!(ran.is_continue(), "{what}: nothing asked it to stop");
            let run = |x: &[f64], wt: &[f64], b: &[f64]| {
                let mut y = vec![0.0; dy.len()];
                let ran =
                    conv::forward(engine, &s, x, wt, b, &mut y, &mut ConvWorkspace::default(), &mut |_, _| {}, &never);
                assert!(ran.is_continue());
                dot(&y, &dy)
            };
            let (w0, b0) = (wt.clone(), b.clone());
            check(&format!("{what} dx"), &mut x.clone(), &dx, |x| run(x, &w0, &b0));
            let x0 = x.clone();
            check(&format!("{what} dw"), &mut wt, &dw, |w| run(&x0, w, &b0));
            check(&format!("{what} db"), &mut b, &db, |b| run(&x0, &w0, b));
            x.clear();
        }
    }
}

#[test]
fn pool_gradients_match_finite_differences_with_remainders_and_overlaps() {
    // (c, h, w, k, stride): windows that do not divide the input, overlapping, 1×1, stride > k.
    let cases = [(2, 7, 5, 2, 2), (1, 6, 6, 3, 2), (2, 5, 7, 3, 1), (1, 4, 4, 1, 1), (1, 9, 8, 2, 3), (3, 6, 6, 2, 2)];
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    for (c, h, w, k, stride) in cases {
        let s = pool::PoolShape { n: 2, c, h, w, k, stride };
        let (oh, ow) = s.out_dims();
        let out = 2 * c * oh * ow;
        for engine in [ConvEngine::Naive, ConvEngine::Fast] {
            let x = random(2 * c * h * w, &mut rng);
            let dy = random(out, &mut rng);
            let what = format!("pool c{c} {h}×{w} k{k} s{stride} {engine:?}");
            // Max: the winners from the forward pass route the gradient.
            let (mut y, mut win, mut dx) = (vec![0.0; out], vec![0; out], vec![0.0; x.len()]);
            pool::max_forward(engine, &s, &x, &mut y, &mut win);
            pool::max_backward(engine, &s, &dy, &win, &mut dx);
            check(&format!("max {what}"), &mut x.clone(), &dx, |x| {
                let (mut y, mut win) = (vec![0.0; out], vec![0; out]);
                pool::max_forward(engine, &s, x, &mut y, &mut win);
                dot(&y, &dy)
            });
            let mut dx = vec![0.0; x.len()];
            pool::avg_backward(engine, &s, &dy, &mut dx);
            check(&format!("avg {what}"), &mut x.clone(), &dx, |x| {
                let mut y = vec![0.0; out];
                pool::avg_forward(engine, &s, x, &mut y);
                dot(&y, &dy)
            });
        }
    }
}

#[test]
fn activation_gradients_match_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for f in [Activation::Relu, Activation::Tanh, Activation::Sigmoid] {
        for engine in [ConvEngine::Naive, ConvEngine::Fast] {
            // Keep ReLU inputs away from its kink at 0.
            let x: Vec<f64> =
                random(40, &mut rng).into_iter().map(|v| if v.abs() < 0.01 { v + 0.05 } else { v * 3.0 }).collect();
            let dy = random(40, &mut rng);
            let (mut y, mut dx) = (vec![0.0; 40], vec![0.0; 40]);
            activation::forward(engine, f, &x, &mut y);
            activation::backward(engine, f, &x, &y, &dy, &mut dx);
            check(&format!("{f:?} {engine:?}"), &mut x.clone(), &dx, |x| {
                let mut y = vec![0.0; 40];
                activation::forward(engine, f, x, &mut y);
                dot(&y, &dy)
            });
        }
    }
}

#[test]
fn linear_gradients_match_finite_differences_with_reg() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let (n, inputs, outputs, reg) = (3, 7, 4, 0.3);
    let (mut x, mut w, mut b) =
        (random(n * inputs, &mut rng), random(outputs * inputs, &mut rng), random(outputs, &mut rng));
    let dy = random(n * outputs, &mut rng);
    let (mut dw, mut db, mut dx) = (vec![0.0; w.len()], vec![0.0; outputs], vec![0.0; x.len()]);
    linear::backward(n, inputs, outputs, &x, &w, &dy, reg, &mut dw, &mut db, Some(&mut dx));
    // The L2 term's own gradient is reg·W, so the checked function includes ½·reg·ΣW².
    let run = |x: &[f64], w: &[f64], b: &[f64]| {
        let mut y = vec![0.0; dy.len()];
        linear::forward(n, inputs, outputs, x, w, b, &mut y);
        dot(&y, &dy) + 0.5 * reg * w.iter().map(|v| v * v).sum::<f64>()
    };
    let (w0, b0, x0) = (w.clone(), b.clone(), x.clone());
    check("fc dx", &mut x, &dx, |x| run(x, &w0, &b0));
    check("fc dw", &mut w, &dw, |w| run(&x0, w, &b0));
    check("fc db", &mut b, &db, |b| run(&x0, &w0, b));
}

// ---------------------------------------------------------------------------------------------
// Whole networks

fn plan(line: &str, input: (usize, usize, usize), classes: usize) -> Plan {
    ModelSpec::parse(line).unwrap().plan(input, classes).unwrap()
}

fn batch<T: Float>(plan: &Plan, n: usize, seed: u64) -> (Vec<T>, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x = (0..n * plan.input.len()).map(|_| <T as Real>::from_f64(rng.random::<f64>())).collect();
    let y = (0..n).map(|_| rng.random_range(0..plan.classes)).collect();
    (x, y)
}

const HYPER: Hyper = Hyper { lr: 0.05, momentum: 0.9, reg: 0.1, lr_decay: 1.0, optimizer: OptimizerKind::Sgd };

/// Runs every phase before the update.
fn gradients<T: Float>(net: &mut Sequential<T>, x: &[T], y: &[usize]) {
    net.load_batch(x, y).unwrap();
    while net.next_phase() != Some(Phase::Update) {
        net.step_phase(&HYPER, &mut |_, _| {}).unwrap();
    }
}

#[test]
fn whole_networks_gradients_match_finite_differences() {
    // Every layer kind, strided and padded convs, pools with remainders, flatten first.
    let nets = [
        (
            "conv(3,3,stride=2,pad=1), tanh, maxpool(2,stride=1), conv(2,2), sigmoid, avgpool(2), flatten, fc(5), relu, fc(4)",
            (2, 9, 9),
        ),
        ("conv(2,3,pad=1), relu, avgpool(3,stride=2), conv(3,3,stride=2,pad=2), tanh, flatten, fc(4)", (1, 8, 7)),
        ("flatten, fc(6), sigmoid, fc(5), tanh, fc(4)", (1, 3, 4)),
        ("maxpool(2), conv(2,2), flatten, fc(4)", (2, 7, 7)),
    ];
    for (line, input) in nets {
        let plan = plan(line, input, 4);
        let mut net = Sequential::<f64>::new(plan.clone(), Init::He, 5, ConvEngine::Naive);
        net.compute_input_grad = true;
        let (x, y) = batch::<f64>(&plan, 3, 6);
        gradients(&mut net, &x, &y);
        let loss_at = |net: &mut Sequential<f64>, x: &[f64]| {
            let mut t = Tensors::default();
            net.forward_into(x, &y, HYPER.reg, &mut t).unwrap();
            t.loss()
        };
        let dx = net.tensors().input_grad().to_vec();
        assert_eq!(dx.len(), x.len(), "{line}: the input gradient is computed");
        check(&format!("{line}: input"), &mut x.clone(), &dx, |x| loss_at(&mut net, x));
        for i in 0..net.params().len() {
            let name = net.params()[i].name.clone();
            let grad = net.grad(i).to_vec();
            let mut values = net.params()[i].data.clone();
            check(&format!("{line}: {name}"), &mut values, &grad, |v| {
                net.set_param(&name, v).unwrap();
                loss_at(&mut net, &x)
            });
            net.set_param(&name, &values).unwrap();
        }
    }
}

/// A random valid network on a random small input.
fn random_network(rng: &mut ChaCha8Rng) -> (Plan, (usize, usize, usize)) {
    loop {
        let input = (rng.random_range(1..=3), rng.random_range(4..=10), rng.random_range(4..=10));
        let mut layers = Vec::new();
        for _ in 0..rng.random_range(0..=4) {
            layers.push(match rng.random_range(0..6) {
                0 | 1 => LayerSpec::Conv {
                    filters: rng.random_range(1..=5),
                    k: rng.random_range(1..=4),
                    stride: rng.random_range(1..=2),
                    pad: rng.random_range(0..=2),
                },
                2 => LayerSpec::MaxPool { k: rng.random_range(1..=3), stride: rng.random_range(1..=3) },
                3 => LayerSpec::AvgPool { k: rng.random_range(1..=3), stride: rng.random_range(1..=3) },
                4 => LayerSpec::Relu,
                _ => [LayerSpec::Tanh, LayerSpec::Sigmoid][rng.random_range(0..2)],
            });
        }
        layers.push(LayerSpec::Flatten);
        if rng.random_bool(0.5) {
            layers.push(LayerSpec::Fc { out: rng.random_range(1..=6) });
            layers.push(LayerSpec::Relu);
        }
        layers.push(LayerSpec::Fc { out: 3 });
        if let Ok(plan) = (ModelSpec { layers }).plan(input, 3) {
            return (plan, input);
        }
    }
}

fn assert_close(what: &str, a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let scale = a.iter().chain(b).fold(0.0f64, |m, v| m.max(v.abs())).max(1e-30);
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() / scale < tol, "{what}[{i}]: {x} vs {y}");
    }
}

#[test]
fn naive_and_fast_engines_agree_on_random_networks() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for case in 0..25 {
        let (plan, _) = random_network(&mut rng);
        let line = plan.spec.to_string();
        let (x, y) = batch::<f64>(&plan, 3, case);
        let mut nets: Vec<Sequential<f64>> = [ConvEngine::Naive, ConvEngine::Fast]
            .into_iter()
            .map(|e| {
                let mut net = Sequential::new(plan.clone(), Init::He, case, e);
                net.compute_input_grad = true;
                net.run_step(&x, &y, &HYPER).unwrap();
                net
            })
            .collect();
        let fast = nets.pop().unwrap();
        let naive = nets.pop().unwrap();
        let (a, b) = (naive.tensors(), fast.tensors());
        for i in 0..plan.layers.len() {
            assert_close(&format!("{line}: output {i}"), a.output(i), b.output(i), 1e-12);
            assert_close(&format!("{line}: grad {i}"), a.output_grad(i), b.output_grad(i), 1e-12);
        }
        assert_close(&format!("{line}: input grad"), a.input_grad(), b.input_grad(), 1e-12);
        for (i, (p, q)) in naive.params().iter().zip(fast.params()).enumerate() {
            assert_close(&format!("{line}: {}", p.name), &p.data, &q.data, 1e-12);
            assert_close(&format!("{line}: grad {}", p.name), naive.grad(i), fast.grad(i), 1e-12);
        }
    }
}

#[test]
fn the_same_seed_gives_the_same_bits() {
    let plan = resolve("tiny", (1, 28, 28), 10).unwrap();
    let run = || {
        let mut net = Sequential::<f32>::new(plan.clone(), Init::He, 11, ConvEngine::Fast);
        let mut losses = Vec::new();
        for step in 0..3 {
            let (x, y) = batch::<f32>(&plan, 8, 100 + step);
            losses.push(net.run_step(&x, &y, &HYPER).unwrap().to_bits());
        }
        let bits: Vec<Vec<u32>> = net.params().iter().map(|p| p.data.iter().map(|v| v.to_bits()).collect()).collect();
        (losses, bits)
    };
    let (first, second) = (run(), run());
    assert_eq!(first, second);
    // And a different seed gives different weights.
    let other = Sequential::<f32>::new(plan.clone(), Init::He, 12, ConvEngine::Fast);
    let again = Sequential::<f32>::new(plan.clone(), Init::He, 11, ConvEngine::Fast);
    assert_ne!(other.params()[0].data, again.params()[0].data);
}

#[test]
fn max_pool_winners_are_kept_for_the_inspector() {
    let plan = plan("maxpool(2), flatten, fc(2)", (1, 4, 4), 2);
    let mut net = Sequential::<f64>::new(plan.clone(), Init::He, 1, ConvEngine::Naive);
    let x: Vec<f64> = (0..16).map(f64::from).collect();
    net.load_batch(&x, &[1]).unwrap();
    net.step_phase(&HYPER, &mut |_, _| {});
    // The bottom-right pixel of each 2×2 window is the largest.
    assert_eq!(net.tensors().winners(0), &[5, 7, 13, 15]);
    assert_eq!(net.tensors().output(0), &[5.0, 7.0, 13.0, 15.0]);
    // flatten reads the same buffer.
    net.step_phase(&HYPER, &mut |_, _| {});
    assert_eq!(net.tensors().output(1), net.tensors().output(0));
}

#[test]
fn a_batch_that_does_not_fit_is_an_error() {
    let plan = plan("flatten, fc(3)", (1, 2, 2), 3);
    let mut net = Sequential::<f32>::new(plan, Init::He, 1, ConvEngine::Fast);
    assert!(net.load_batch(&[0.0; 8], &[0]).unwrap_err().to_string().contains("4 per image"));
    assert!(net.load_batch(&[0.0; 4], &[3]).unwrap_err().to_string().contains("not below 3 classes"));
    assert!(net.load_batch(&[], &[]).is_err());
    assert!(net.set_param("0.weight", &[0.0; 12]).is_err(), "flatten has no weight");
    assert!(net.set_param("1.weight", &[0.0; 11]).unwrap_err().to_string().contains("needs 12 values"));
}

// ---------------------------------------------------------------------------------------------
// Adam

#[test]
fn adam_matches_a_hand_computed_two_step_example() {
    // p = 1, g = 0.5 then −0.25, lr = 0.1, β1 = 0.9, β2 = 0.999, ε = 1e-8.
    // Step 1: m = 0.05, v = 0.00025; m̂ = 0.5, v̂ = 0.25; p = 1 − 0.1·0.5/(0.5 + 1e-8) = 0.900000002.
    // Step 2: m = 0.045 − 0.025 = 0.02, v = 0.00024975 + 0.0000625 = 0.00031225;
    //   m̂ = 0.02/0.19, v̂ = 0.00031225/0.001999; p = 0.900000002 − 0.1·m̂/(√v̂ + 1e-8) = 0.8733662987078463.
    let mut p = [1.0_f64];
    let mut st = AdamState::default();
    let mut d = [0.0];
    adam_step(&mut p, &[0.5], &mut st, &mut d, 0.1, 1, 0.9, 0.999, 1e-8);
    assert!((st.m[0] - 0.05).abs() < 1e-15 && (st.v[0] - 0.00025).abs() < 1e-18);
    assert!((p[0] - 0.900000002).abs() < 1e-12, "{}", p[0]);
    assert!((d[0] + 0.099999998).abs() < 1e-12);
    adam_step(&mut p, &[-0.25], &mut st, &mut d, 0.1, 2, 0.9, 0.999, 1e-8);
    assert!((st.m[0] - 0.02).abs() < 1e-15 && (st.v[0] - 0.00031225).abs() < 1e-17);
    let by_hand = 0.900000002 - 0.1 * (0.02 / 0.19) / ((0.00031225_f64 / 0.001999).sqrt() + 1e-8);
    assert!((p[0] - by_hand).abs() < 1e-12 && (p[0] - 0.8733662987078463).abs() < 1e-12, "{}", p[0]);
}

#[test]
fn adam_trains_a_network_and_records_the_change() {
    let plan = plan("conv(2,3,pad=1), relu, maxpool(2), flatten, fc(3)", (1, 6, 6), 3);
    let mut net = Sequential::<f64>::new(plan.clone(), Init::He, 3, ConvEngine::Fast);
    net.optimizer = Optimizer::ADAM;
    let (x, y) = batch::<f64>(&plan, 6, 9);
    let hyper = Hyper { lr: 0.01, momentum: 0.0, reg: 0.0, lr_decay: 1.0, optimizer: OptimizerKind::Sgd };
    let first = net.run_step(&x, &y, &hyper).unwrap();
    let before = net.params()[0].data.clone();
    for _ in 0..30 {
        net.run_step(&x, &y, &hyper).unwrap();
    }
    let before_last = net.params()[0].data.clone();
    let last = net.run_step(&x, &y, &hyper).unwrap();
    assert!(last < first * 0.8, "loss {first} → {last}");
    let change: Vec<f64> = net.params()[0].data.iter().zip(&before_last).map(|(a, b)| a - b).collect();
    assert_close("ΔW", net.delta(0), &change, 1e-12);
    assert_ne!(before, net.params()[0].data);
}

// ---------------------------------------------------------------------------------------------
// Equivalence with the post's Network

fn post_line(cfg: &ModelConfig) -> String {
    let conv = |f: usize| format!("conv({f},{},stride={},pad={})", cfg.kernel, cfg.stride, cfg.pad);
    let relu2 = if cfg.relu_after_conv2 { "relu, " } else { "" };
    format!(
        "{}, relu, {}, {relu2}flatten, fc({}), relu, fc({})",
        conv(cfg.conv1_filters),
        conv(cfg.conv2_filters),
        cfg.hidden,
        cfg.classes
    )
}

fn bits<T: Float>(v: &[T]) -> Vec<u64> {
    v.iter().map(|x| x.to_f64().to_bits()).collect()
}

/// Two steps of `Network` and of `Sequential` on the same line, weights and batches: every
/// activation, gradient, loss and updated weight has the same bits.
fn same_as_network<T: Float>(cfg: ModelConfig, engine: ConvEngine, init: Init, n: usize) {
    let plan = plan(&post_line(&cfg), (cfg.in_channels, cfg.in_height, cfg.in_width), cfg.classes);
    let mut old = Network::<T>::new(cfg, init, 21, engine).unwrap();
    let mut new = Sequential::<T>::new(plan.clone(), init, 21, engine);
    old.compute_input_grad = true;
    new.compute_input_grad = true;
    let what = format!("{} {engine:?} {}", plan.spec, std::any::type_name::<T>());
    for (p, q) in new.params().iter().zip(old.params.slices()) {
        assert_eq!(bits(&p.data), bits(q), "{what}: initial {}", p.name);
    }
    let r = usize::from(cfg.relu_after_conv2);
    for step in 0..2 {
        let (x, y) = batch::<T>(&plan, n, 40 + step);
        let l_old = old.train_step(&x, &y, &HYPER).unwrap();
        let l_new = new.run_step(&x, &y, &HYPER).unwrap();
        assert_eq!(l_old.to_f64().to_bits(), l_new.to_f64().to_bits(), "{what}: loss at step {step}");
        let (a, t) = (old.activations(), new.tensors());
        let pairs: Vec<(&str, &[T], &[T])> = vec![
            ("conv1", &a.conv1, t.output(0)),
            ("relu1", &a.relu1, t.output(1)),
            ("conv2", &a.conv2, t.output(2)),
            ("fc1", &a.fc1, t.output(4 + r)),
            ("relu2", &a.relu2, t.output(5 + r)),
            ("scores", &a.scores, t.output(6 + r)),
            ("probs", &a.probs, &t.probs),
            ("d_scores", &a.d_scores, t.output_grad(6 + r)),
            ("d_relu2", &a.d_relu2, t.output_grad(5 + r)),
            ("d_fc1", &a.d_fc1, t.output_grad(4 + r)),
            ("d_conv2", &a.d_conv2, t.output_grad(2)),
            ("d_relu1", &a.d_relu1, t.output_grad(1)),
            ("d_conv1", &a.d_conv1, t.output_grad(0)),
            ("d_input", &a.d_input, t.input_grad()),
        ];
        for (name, x, y) in pairs {
            assert_eq!(bits(x), bits(y), "{what}: {name} at step {step}");
        }
        if cfg.relu_after_conv2 {
            assert_eq!(bits(&a.relu_c2), bits(t.output(3)), "{what}: relu after conv2");
            assert_eq!(bits(&a.d_relu_c2), bits(t.output_grad(3)), "{what}: its gradient");
        }
        for (i, ((p, q), (g, v))) in new
            .params()
            .iter()
            .zip(old.params.slices())
            .zip(old.grads.slices().into_iter().zip(old.velocity.slices()))
            .enumerate()
        {
            assert_eq!(bits(new.grad(i)), bits(g), "{what}: gradient of {} at step {step}", p.name);
            assert_eq!(bits(new.delta(i)), bits(v), "{what}: velocity of {} at step {step}", p.name);
            assert_eq!(bits(&p.data), bits(q), "{what}: {} after step {step}", p.name);
        }
    }
}

fn small_post() -> ModelConfig {
    ModelConfig {
        in_channels: 1,
        in_height: 8,
        in_width: 7,
        conv1_filters: 4,
        conv2_filters: 3,
        kernel: 3,
        stride: 1,
        pad: 1,
        hidden: 6,
        classes: 4,
        relu_after_conv2: false,
    }
}

#[test]
fn sequential_reproduces_the_posts_network_bit_for_bit() {
    for relu in [false, true] {
        let cfg = ModelConfig { relu_after_conv2: relu, ..small_post() };
        for engine in [ConvEngine::Naive, ConvEngine::Fast] {
            same_as_network::<f32>(cfg, engine, Init::He, 5);
            same_as_network::<f64>(cfg, engine, Init::Post, 3);
        }
        // Stride 2 and a 5×5 kernel.
        same_as_network::<f32>(ModelConfig { stride: 2, kernel: 5, pad: 2, ..cfg }, ConvEngine::Fast, Init::He, 4);
    }
}

#[test]
fn sequential_reproduces_the_full_size_post_network() {
    for name in ["post", "post-relu"] {
        let cfg = ModelConfig { relu_after_conv2: name == "post-relu", ..ModelConfig::default() };
        assert_eq!(post_line(&cfg).replace(",stride=1", ""), named(name).unwrap().line);
        same_as_network::<f32>(cfg, ConvEngine::Fast, Init::He, 2);
    }
}

#[test]
fn tiny_reads_as_the_brief_describes_it() {
    let plan = resolve("tiny", (1, 28, 28), 10).unwrap();
    let conv2 = plan.layer_named("conv2").unwrap();
    assert_eq!(
        plan.phase_sentence(Phase::Forward(conv2.index), Optimizer::Sgd),
        "conv2: 16×14×14 → 32×14×14, 32 filters of 16×5×5, stride 1, pad 2."
    );
    assert!(plan.total_params() < 50_000);
}

#[test]
fn evaluating_other_images_leaves_the_step_untouched() {
    let plan = plan("conv(2,3), relu, maxpool(2), flatten, fc(3)", (1, 6, 6), 3);
    let mut net = Sequential::<f64>::new(plan.clone(), Init::He, 4, ConvEngine::Fast);
    let (x, y) = batch::<f64>(&plan, 4, 1);
    gradients(&mut net, &x, &y);
    let before = (net.tensors().output(2).to_vec(), net.tensors().output_grad(0).to_vec(), net.phases_done());
    let (x2, y2) = batch::<f64>(&plan, 2, 2);
    let mut t = Tensors::default();
    net.forward_into(&x2, &y2, HYPER.reg, &mut t).unwrap();
    assert_eq!(t.n, 2);
    assert_eq!(t.predictions().len(), 2);
    assert_eq!(before, (net.tensors().output(2).to_vec(), net.tensors().output_grad(0).to_vec(), net.phases_done()));
    // The same images give the same loss as the step's own forward pass.
    let mut same = Tensors::default();
    net.forward_into(&x, &y, HYPER.reg, &mut same).unwrap();
    assert_eq!(same.loss().to_bits(), net.tensors().loss().to_bits());
    assert_eq!(same.winners(2), net.tensors().winners(2));
    assert_eq!(net.weight_index(0), Some(0));
    assert_eq!(net.weight_index(4), Some(2));
    assert_eq!(net.weight_index(1), None);
    assert_eq!(net.params()[2].name, "4.weight");
}
