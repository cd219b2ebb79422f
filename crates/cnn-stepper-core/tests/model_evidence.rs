//! The class evidence of any network (`engine::model::evidence`): which networks have it and
//! why the others do not, the maps adding up to the scores, and one unit of the first fc.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers may panic: that is the failure report.

mod common;

use cnn_stepper_core::engine::model::evidence::{Evidence, class_evidence, evidence_support, fc_unit};
use cnn_stepper_core::engine::model::{LayerSpec, ModelSpec, ParamTensor, Plan, Sequential, Tensors, resolve};
use cnn_stepper_core::engine::{ConvEngine, Init, ModelConfig, Params, evidence as post_evidence};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const MNIST: (usize, usize, usize) = (1, 28, 28);

fn plan(line: &str, input: (usize, usize, usize), classes: usize) -> Plan {
    ModelSpec::parse(line).unwrap().plan(input, classes).unwrap()
}

/// A He-initialised f64 network with biases drawn from ±0.2, so that some fc units are off and
/// some on.
fn network(plan: &Plan, seed: u64) -> Sequential<f64> {
    let mut net = Sequential::<f64>::new(plan.clone(), Init::He, seed, ConvEngine::Fast);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xB1A5);
    for p in net.params().to_vec() {
        if p.name.ends_with(".bias") {
            let b: Vec<f64> = p.data.iter().map(|_| rng.random_range(-0.2..0.2)).collect();
            net.set_param(&p.name, &b).unwrap();
        }
    }
    net
}

/// The forward pass of `n` images: MNIST test images for a 1×28×28 plan, random otherwise.
fn forward(net: &mut Sequential<f64>, n: usize) -> Tensors<f64> {
    let plan = net.plan().clone();
    let (x, y): (Vec<f64>, Vec<usize>) = if plan.input.dims() == [1, 28, 28] {
        let b = common::sample().test.batch(&(0..n).collect::<Vec<_>>()).unwrap();
        (b.images.iter().map(|v| f64::from(*v)).collect(), b.labels)
    } else {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        ((0..n * plan.input.len()).map(|_| rng.random::<f64>()).collect(), vec![0; n])
    };
    let mut t = Tensors::default();
    net.forward_into(&x, &y, 0.0, &mut t).unwrap();
    t
}

fn sum(v: &[f64]) -> f64 {
    v.iter().sum()
}

/// Σ maps + bias term = the score of every class, and the scores are the network's.
fn assert_adds_up(what: &str, ev: &Evidence<f64>, scores: &[f64]) {
    assert_eq!(ev.logits.len(), scores.len(), "{what}");
    for (k, (logit, score)) in ev.logits.iter().zip(scores).enumerate() {
        let total = sum(ev.class_map(k).unwrap()) + ev.bias_terms[k];
        let scale = logit.abs().max(1.0);
        assert!((total - logit).abs() < 1e-10 * scale, "{what}: class {k}: Σ maps + bias {total} vs score {logit}");
        assert!((logit - score).abs() < 1e-10 * scale, "{what}: class {k}: {logit} vs the network's {score}");
    }
}

#[test]
fn the_evidence_maps_add_up_to_the_scores_on_the_named_and_random_networks() {
    let mut lines: Vec<(String, Plan)> = ["post", "post-relu", "tiny", "lenet5"]
        .iter()
        .map(|n| (n.to_string(), resolve(n, MNIST, 10).unwrap()))
        .collect();
    // Random networks whose layers after flatten are fc layers and ReLUs in any order, on maps
    // of any shape (or on the image itself, flatten first).
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    while lines.len() < 14 {
        let mut layers = Vec::new();
        for _ in 0..rng.random_range(0..=3) {
            layers.push(match rng.random_range(0..4) {
                0 => LayerSpec::Conv {
                    filters: rng.random_range(1..=4),
                    k: rng.random_range(1..=3),
                    stride: rng.random_range(1..=2),
                    pad: rng.random_range(0..=1),
                },
                1 => LayerSpec::MaxPool { k: 2, stride: rng.random_range(1..=2) },
                2 => LayerSpec::Tanh,
                _ => LayerSpec::Relu,
            });
        }
        layers.push(LayerSpec::Flatten);
        for _ in 0..rng.random_range(0..=4) {
            layers.push(if rng.random_bool(0.6) {
                LayerSpec::Fc { out: rng.random_range(2..=8) }
            } else {
                LayerSpec::Relu
            });
        }
        layers.push(LayerSpec::Fc { out: 4 });
        let input = (rng.random_range(1..=2), rng.random_range(3..=8), rng.random_range(3..=8));
        if let Ok(p) = (ModelSpec { layers }).plan(input, 4) {
            lines.push((p.spec.to_string(), p));
        }
    }
    let mut some_off = 0;
    for (what, plan) in &lines {
        let layers = evidence_support(plan).unwrap_or_else(|e| panic!("{what}: {e}"));
        let mut net = network(plan, 5);
        let t = forward(&mut net, 3);
        for image in 0..3 {
            let x = layers.x_of(&t, image).unwrap();
            assert_eq!(x.len(), layers.inputs());
            let ev = class_evidence(plan, net.params(), x).unwrap();
            let classes = plan.classes;
            assert_eq!(ev.maps.len(), classes * layers.inputs(), "{what}");
            assert_eq!((ev.channels, ev.height, ev.width), (layers.channels, layers.height, layers.width));
            assert_adds_up(what, &ev, &t.scores()[image * classes..(image + 1) * classes]);
            // Every ReLU after flatten is held at its pattern, which is its input's sign.
            let relus: Vec<usize> =
                layers.chain.iter().copied().filter(|&i| plan.layers[i].spec == LayerSpec::Relu).collect();
            assert_eq!(ev.patterns.iter().map(|p| p.layer).collect::<Vec<_>>(), relus, "{what}");
            for p in &ev.patterns {
                let before = t.output(p.layer - 1);
                let per = plan.layers[p.layer].input.len();
                let on: Vec<bool> = before[image * per..(image + 1) * per].iter().map(|v| *v > 0.0).collect();
                assert_eq!(p.on, on, "{what}: {}", p.name);
                assert_eq!(p.name, plan.layers[p.layer].name);
                some_off += p.on.iter().filter(|on| !**on).count();
            }
        }
    }
    assert!(some_off > 0, "some units are off, so the patterns are exercised");
}

#[test]
fn with_one_fc_the_evidence_is_each_value_times_its_weight() {
    let plan = resolve("tiny", MNIST, 10).unwrap();
    let mut net = network(&plan, 2);
    let t = forward(&mut net, 1);
    let layers = evidence_support(&plan).unwrap();
    let x = layers.x_of(&t, 0).unwrap();
    let ev = class_evidence(&plan, net.params(), x).unwrap();
    let (w, b) = (&net.param("7.weight").unwrap().data, &net.param("7.bias").unwrap().data);
    assert_eq!(&ev.bias_terms, b);
    let n = layers.inputs();
    for k in 0..10 {
        let want: Vec<f64> = x.iter().zip(&w[k * n..(k + 1) * n]).map(|(x, w)| x * w).collect();
        assert_eq!(ev.class_map(k).unwrap(), want.as_slice(), "class {k}");
    }
    assert!(ev.patterns.is_empty());
    assert_eq!(ev.channel_map(3, 31).unwrap(), &ev.class_map(3).unwrap()[31 * 49..]);
    assert_eq!(ev.channel_map(3, 32), None);
    assert_eq!(ev.class_map(10), None);
}

#[test]
fn the_evidence_of_the_posts_line_is_the_post_networks() {
    // The same weights in the post's `Network` (Params::init) and on its line (Sequential::new).
    let cfg =
        ModelConfig { conv1_filters: 3, conv2_filters: 4, kernel: 3, pad: 1, hidden: 12, ..ModelConfig::default() };
    let plan = plan("conv(3,3,pad=1), relu, conv(4,3,pad=1), flatten, fc(12), relu, fc(10)", MNIST, 10);
    let params = Params::<f64>::init(&cfg, Init::He, 9);
    let mut net = Sequential::<f64>::new(plan.clone(), Init::He, 9, ConvEngine::Fast);
    assert_eq!(net.param("4.weight").unwrap().data, params.fc1_w.iter().copied().collect::<Vec<_>>());
    let t = forward(&mut net, 1);
    let x = evidence_support(&plan).unwrap().x_of(&t, 0).unwrap().to_vec();
    let old = post_evidence::class_evidence(&cfg, &params, &x).unwrap();
    let new = class_evidence(&plan, net.params(), &x).unwrap();
    let close = |a: &[f64], b: &[f64]| a.len() == b.len() && a.iter().zip(b).all(|(a, b)| (a - b).abs() < 1e-12);
    assert!(close(&old.maps, &new.maps) && close(&old.bias_terms, &new.bias_terms) && close(&old.logits, &new.logits));
    assert_eq!(new.active(5).unwrap(), old.active.as_slice());
}

#[test]
fn the_layers_that_play_x_fc1_relu_and_fc2() {
    let support = |name: &str| evidence_support(&resolve(name, MNIST, 10).unwrap()).unwrap();
    let post = support("post");
    assert_eq!((post.source, post.flatten, post.first_fc, post.relu, post.last_fc), (Some(2), 3, 4, Some(5), 6));
    assert_eq!((post.channels, post.height, post.width, post.inputs()), (32, 28, 28, 25_088));
    assert!(post.unit_votes());
    let relu = support("post-relu");
    assert_eq!((relu.source, relu.first_fc, relu.relu, relu.last_fc), (Some(3), 5, Some(6), 7));
    let tiny = support("tiny");
    assert_eq!((tiny.source, tiny.first_fc, tiny.relu, tiny.last_fc), (Some(5), 7, None, 7));
    assert_eq!((tiny.channels, tiny.height, tiny.width), (32, 7, 7));
    assert!(!tiny.unit_votes(), "its units are the classes");
    let lenet = support("lenet5");
    assert_eq!((lenet.source, lenet.first_fc, lenet.relu, lenet.last_fc), (Some(5), 7, Some(8), 11));
    assert_eq!((lenet.chain.clone(), lenet.fcs.clone()), (vec![7, 8, 9, 10, 11], vec![7, 9, 11]));
    assert!(!lenet.unit_votes(), "a unit reaches the classes through fc2 and relu4");
    let linear = evidence_support(&plan("flatten, fc(10)", MNIST, 10)).unwrap();
    assert_eq!((linear.source, linear.channels, linear.height, linear.width), (None, 1, 28, 28));

    let p = resolve("post", MNIST, 10).unwrap();
    let s = post.sentence(&p);
    assert!(s.contains("relu2") && s.contains("32×28×28") && s.contains("conv2 hands to flatten"), "{s}");
    let s = tiny.sentence(&resolve("tiny", MNIST, 10).unwrap());
    assert!(s.contains("32×7×7 values pool2") && s.contains("its weight in the fc") && !s.contains("pattern"), "{s}");
    let s = linear.sentence(&plan("flatten, fc(10)", MNIST, 10));
    assert!(s.contains("values of the image"), "{s}");
    let one = plan("conv(3,5), maxpool(4), maxpool(6), flatten, fc(10)", MNIST, 10);
    assert!(evidence_support(&one).unwrap().sentence(&one).contains("1×1: the evidence is one number per channel"));
}

#[test]
fn a_curved_activation_after_flatten_has_no_exact_evidence_and_says_why() {
    let tanh = plan("conv(4,5), relu, maxpool(2), flatten, fc(20), tanh, fc(10)", MNIST, 10);
    let why = evidence_support(&tanh).unwrap_err();
    assert_eq!(
        why,
        "the class evidence is exact only when every activation after flatten is a ReLU (held at its on/off \
         pattern a ReLU multiplies by 1 or 0, a tanh is curved); this network has fc(20) → tanh → fc(10) after flatten"
    );
    let sigmoid = plan("flatten, sigmoid, fc(10)", MNIST, 10);
    assert!(evidence_support(&sigmoid).unwrap_err().contains("a sigmoid is curved"));
    // Before flatten any activation is fine: x is what flatten takes.
    assert!(evidence_support(&plan("conv(2,5), tanh, flatten, fc(10)", MNIST, 10)).is_ok());
    let net = Sequential::<f64>::new(tanh.clone(), Init::He, 1, ConvEngine::Fast);
    let err = class_evidence(&tanh, net.params(), &vec![0.0; 4 * 12 * 12]).unwrap_err().to_string();
    assert!(err.contains("a tanh is curved"), "{err}");
    assert!(fc_unit(&tanh, net.params(), 0).unwrap_err().to_string().contains("a tanh is curved"));
}

#[test]
fn an_fc_unit_is_a_row_of_the_first_fc_and_votes_through_the_last() {
    let post = plan("conv(3,3,pad=1), relu, conv(4,3,pad=1), flatten, fc(12), relu, fc(10)", MNIST, 10);
    let net = network(&post, 4);
    let (w1, b1, w2) = (net.param("4.weight").unwrap(), net.param("4.bias").unwrap(), net.param("6.weight").unwrap());
    let n = 4 * 28 * 28;
    for unit in [0, 7, 11] {
        let u = fc_unit(&post, net.params(), unit).unwrap();
        assert_eq!((u.layer, u.unit, u.channels, u.height, u.width), (4, unit, 4, 28, 28));
        assert_eq!(u.weights, w1.data[unit * n..(unit + 1) * n]);
        assert_eq!(u.bias, b1.data[unit]);
        let votes: Vec<f64> = (0..10).map(|k| w2.data[k * 12 + unit]).collect();
        assert_eq!(u.class_weights, Some(votes));
    }
    let msg = fc_unit(&post, net.params(), 12).unwrap_err().to_string();
    assert!(msg.contains("fc1 has units 0 to 11, not 12"), "{msg}");

    // One fc: a unit is a class, its row is the class's weights, and it votes for no other.
    let tiny = resolve("tiny", MNIST, 10).unwrap();
    let net = network(&tiny, 4);
    let u = fc_unit(&tiny, net.params(), 3).unwrap();
    assert_eq!(u.weights, net.param("7.weight").unwrap().data[3 * 1568..4 * 1568]);
    assert_eq!(u.class_weights, None);
    // Three fc: a unit's effect on the classes depends on the image.
    let lenet = resolve("lenet5", MNIST, 10).unwrap();
    let net = network(&lenet, 4);
    let u = fc_unit(&lenet, net.params(), 119).unwrap();
    assert_eq!((u.weights.len(), u.class_weights), (400, None));
}

#[test]
fn inputs_or_parameters_that_do_not_fit_are_refused_with_a_message() {
    let tiny = resolve("tiny", MNIST, 10).unwrap();
    let net = network(&tiny, 1);
    let msg = class_evidence(&tiny, net.params(), &[0.0; 100]).unwrap_err().to_string();
    assert!(msg.contains("32×7×7 = 1568 values") && msg.contains("got 100"), "{msg}");
    let post = network(&resolve("post", MNIST, 10).unwrap(), 1);
    let msg = class_evidence(&tiny, post.params(), &[0.0; 1568]).unwrap_err().to_string();
    assert!(msg.contains("no parameter tensor `7.weight` (fc1's weight)"), "{msg}");
    let mut wrong: Vec<ParamTensor<f64>> = net.params().to_vec();
    wrong[5].shape = vec![11];
    wrong[5].data.push(0.0);
    let msg = fc_unit(&tiny, &wrong, 0).unwrap_err().to_string();
    assert!(msg.contains("`7.bias` (fc1's bias) has shape [11] (11 values) but the network needs [10]"), "{msg}");
    let t: Tensors<f64> = Tensors::default();
    assert_eq!(evidence_support(&tiny).unwrap().x_of(&t, 0), None, "no batch, no x");
}
