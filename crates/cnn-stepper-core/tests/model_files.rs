//! Model files (`weights::save_model` / `load_model`): round trips of the named networks, the
//! post's files from before model lines, state dicts without metadata, every kind of broken
//! file, and the `.npz` names of any network.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers may panic: that is the failure report.

use std::collections::{BTreeMap, HashMap};
use std::fs;

use cnn_stepper_core::data;
use cnn_stepper_core::engine::model::{NAMED, ParamTensor, Plan, Sequential, Tensors, named, resolve};
use cnn_stepper_core::engine::npz::{self, NpzName};
use cnn_stepper_core::engine::weights::{
    self, FORMAT, Integrity, LoadedModel, MODEL_FORMAT, ModelMeta, ModelWeights, Origin, WeightsError, WeightsMeta,
};
use cnn_stepper_core::engine::{Activations, ConvEngine, Init, ModelConfig, Network, Params, Preset};
use proptest::prelude::*;
use safetensors::tensor::{Dtype, TensorView};

const FILE: &str = "model.safetensors";

/// A small network using both pools and two activations on 1×8×8 images with 4 classes:
/// 8 → conv p1 → 8 → avgpool 2 → 4 → conv 3 → 2 → flatten 12 → fc 4. Tensors `0`, `3`, `6`.
const SMALL: &str = "conv(2,3,pad=1), tanh, avgpool(2), conv(3,3), relu, flatten, fc(4)";

fn small_plan() -> Plan {
    resolve(SMALL, (1, 8, 8), 4).unwrap()
}

fn mnist_plan(name: &str) -> Plan {
    resolve(name, (1, 28, 28), 10).unwrap()
}

/// `plan`'s network with He weights from `seed` and biases made non-zero (so that a bias lost
/// or swapped would show).
fn weights_of(plan: &Plan, seed: u64) -> ModelWeights {
    let net = Sequential::<f32>::new(plan.clone(), Init::He, seed, ConvEngine::Fast);
    let mut w = ModelWeights::of(&net);
    for t in w.tensors.iter_mut().filter(|t| t.name.ends_with(".bias")) {
        for (i, v) in t.data.iter_mut().enumerate() {
            *v = 0.01 * (i as f32 + 1.0) * if seed.is_multiple_of(2) { 1.0 } else { -1.0 };
        }
    }
    w
}

fn small_weights() -> ModelWeights {
    let mut w = weights_of(&small_plan(), 3);
    w.class_names = ["cat", "dog", "emu", "yak"].map(String::from).to_vec();
    w.meta = ModelMeta { preset: Some("recommended".into()), seed: Some(3), step: Some(250) };
    w
}

fn small_file() -> Vec<u8> {
    weights::to_bytes_model(&small_weights()).unwrap()
}

fn bits(tensors: &[ParamTensor<f32>]) -> Vec<(String, Vec<usize>, Vec<u32>)> {
    tensors.iter().map(|t| (t.name.clone(), t.shape.clone(), t.data.iter().map(|v| v.to_bits()).collect())).collect()
}

fn load_err(bytes: &[u8], expected: Option<&Plan>) -> WeightsError {
    match weights::from_bytes_model(bytes, FILE, expected) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

/// One tensor to write with the safetensors crate directly, bypassing our checks.
struct Raw {
    name: String,
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl Raw {
    fn f32(name: &str, shape: &[usize], values: &[f32]) -> Self {
        let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        Self { name: name.into(), dtype: Dtype::F32, shape: shape.to_vec(), data }
    }

    fn of(tensors: &[ParamTensor<f32>]) -> Vec<Self> {
        tensors.iter().map(|t| Raw::f32(&t.name, &t.shape, &t.data)).collect()
    }
}

fn write_raw(tensors: &[Raw], metadata: Option<HashMap<String, String>>) -> Vec<u8> {
    let views: Vec<(String, TensorView<'_>)> =
        tensors.iter().map(|t| (t.name.clone(), TensorView::new(t.dtype, t.shape.clone(), &t.data).unwrap())).collect();
    safetensors::serialize(views, metadata).unwrap()
}

/// A model file's metadata, without checksums: what a hand-made or older file might hold.
fn model_metadata(line: &str, input: &str) -> HashMap<String, String> {
    HashMap::from([
        ("format".to_owned(), MODEL_FORMAT.to_owned()),
        ("model".to_owned(), line.to_owned()),
        ("input".to_owned(), input.to_owned()),
    ])
}

/// The small network's tensors as a model file without checksums, after `edit`.
fn small_raw_file(edit: impl FnOnce(&mut Vec<Raw>, &mut HashMap<String, String>)) -> Vec<u8> {
    let mut tensors = Raw::of(&small_weights().tensors);
    let mut meta = model_metadata(SMALL, "1×8×8");
    edit(&mut tensors, &mut meta);
    write_raw(&tensors, Some(meta))
}

/// The first `n` test images of the embedded sample, as pixels and labels.
fn sample_images(n: usize) -> (Vec<f32>, Vec<usize>) {
    let test = data::embedded().unwrap().test;
    let b = test.batch(&(0..n).collect::<Vec<_>>()).unwrap();
    (b.images.as_slice().unwrap().to_vec(), b.labels)
}

fn scores(net: &mut Sequential<f32>, images: &[f32], labels: &[usize]) -> Vec<u32> {
    let mut out = Tensors::default();
    net.forward_into(images, labels, 0.0, &mut out).unwrap();
    out.scores().iter().map(|v| v.to_bits()).collect()
}

#[test]
fn every_named_network_round_trips_bit_for_bit_with_its_line_input_and_class_names() {
    for m in NAMED {
        let plan = mnist_plan(m.name);
        let mut w = weights_of(&plan, 7);
        w.class_names = (0..10).map(|d| d.to_string()).collect();
        w.meta = ModelMeta { preset: Some("post".into()), seed: Some(7), step: Some(12) };
        let bytes = weights::to_bytes_model(&w).unwrap();
        for expected in [None, Some(&plan)] {
            let loaded = weights::from_bytes_model(&bytes, FILE, expected).unwrap();
            assert_eq!(bits(&loaded.weights.tensors), bits(&w.tensors), "{}", m.name);
            assert_eq!(loaded.weights.line, m.line, "{}: the canonical line is the named one", m.name);
            assert_eq!(loaded.weights.input, (1, 28, 28));
            assert_eq!(loaded.weights.class_names, w.class_names);
            assert_eq!(loaded.weights.meta, w.meta);
            assert_eq!(loaded.plan, plan);
            assert_eq!((loaded.origin, loaded.integrity), (Origin::ModelFile, Integrity::Verified));
        }
        assert_eq!(weights::to_bytes_model(&w).unwrap(), bytes, "{}: the same weights give the same bytes", m.name);
    }
}

#[test]
fn a_saved_file_predicts_as_the_network_it_was_saved_from() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.safetensors");
    let plan = mnist_plan("tiny");
    let mut net = Sequential::<f32>::new(plan.clone(), Init::He, 9, ConvEngine::Fast);
    let (images, labels) = sample_images(6);
    // A few steps, so that the file holds trained weights rather than the init.
    for _ in 0..3 {
        net.run_step(&images, &labels, &Preset::Recommended.hyper()).unwrap();
    }
    weights::save_model(&path, &ModelWeights::of(&net)).unwrap();
    let loaded = weights::load_model(&path, None).unwrap();
    for engine in [ConvEngine::Naive, ConvEngine::Fast] {
        net.engine = engine;
        assert_eq!(
            scores(&mut loaded.sequential(engine).unwrap(), &images, &labels),
            scores(&mut net, &images, &labels)
        );
    }
}

#[test]
fn a_model_file_has_pytorch_sequential_names_and_the_documented_metadata() {
    let plan = mnist_plan("lenet5");
    let mut w = weights_of(&plan, 1);
    w.class_names = vec!["zero".into(), "one".into(), "2".into(), "3".into(), "4".into()];
    w.class_names.extend((5..10).map(|d| d.to_string()));
    w.meta.seed = Some(1);
    let bytes = weights::to_bytes_model(&w).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let info = header.metadata().as_ref().unwrap();
    assert_eq!(info["format"], "cnn-stepper weights v2");
    assert_eq!(info["model"], named("lenet5").unwrap().line);
    assert_eq!(info["input"], "1×28×28");
    assert_eq!(serde_json::from_str::<Vec<String>>(&info["classes"]).unwrap(), w.class_names);
    assert_eq!(info["seed"], "1");
    assert!(!info.contains_key("step") && !info.contains_key("preset"), "absent metadata is not written: {info:?}");
    let mut keys: Vec<&str> = info.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["checksums", "classes", "format", "input", "model", "seed"]);

    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names = st.names();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "0.bias",
            "0.weight",
            "11.bias",
            "11.weight",
            "3.bias",
            "3.weight",
            "7.bias",
            "7.weight",
            "9.bias",
            "9.weight"
        ]
    );
    let shapes: BTreeMap<&str, Vec<usize>> =
        names.iter().map(|n| (*n, st.tensor(n).unwrap().shape().to_vec())).collect();
    assert_eq!(shapes["0.weight"], [6, 1, 5, 5]);
    assert_eq!(shapes["3.weight"], [16, 6, 5, 5]);
    assert_eq!(shapes["7.weight"], [120, 400]);
    assert_eq!(shapes["9.weight"], [84, 120]);
    assert_eq!(shapes["11.weight"], [10, 84]);
    assert_eq!(shapes["11.bias"], [10]);
    assert!(names.iter().all(|n| st.tensor(n).unwrap().dtype() == Dtype::F32));
}

#[test]
fn the_input_may_be_written_with_an_ascii_x_and_classes_may_be_left_out() {
    let bytes = small_raw_file(|_, meta| {
        meta.insert("input".into(), "1x8x8".into());
    });
    let loaded = weights::from_bytes_model(&bytes, FILE, None).unwrap();
    assert_eq!(loaded.weights.input, (1, 8, 8));
    assert!(loaded.weights.class_names.is_empty());
    assert_eq!(loaded.integrity, Integrity::Unchecked);
    assert_eq!(loaded.weights.meta, ModelMeta::default());
    assert_eq!(bits(&loaded.weights.tensors), bits(&small_weights().tensors));
}

/// A file of the post's network as `weights::save` wrote it before model lines.
fn old_post_file(cfg: ModelConfig, seed: u64) -> (Params<f32>, Vec<u8>) {
    let params = Params::init(&cfg, Init::He, seed);
    let meta = WeightsMeta { config: cfg, preset: Some("recommended".into()), seed: Some(seed), step: Some(42) };
    let bytes = weights::to_bytes(&params, &meta).unwrap();
    (params, bytes)
}

/// An old post file loads as the named network `name` and predicts exactly what the post's
/// `Network` predicts with the same parameters.
fn old_file_loads_as(cfg: ModelConfig, name: &str, indices: [&str; 4]) {
    let (params, bytes) = old_post_file(cfg, 5);
    let loaded = weights::from_bytes_model(&bytes, FILE, None).unwrap();
    assert_eq!(loaded.weights.line, named(name).unwrap().line);
    assert_eq!(loaded.plan, mnist_plan(name));
    assert_eq!((loaded.origin, loaded.integrity), (Origin::PostFile, Integrity::Verified));
    assert_eq!(loaded.weights.meta, ModelMeta { preset: Some("recommended".into()), seed: Some(5), step: Some(42) });
    let want: Vec<String> = indices.iter().flat_map(|i| [format!("{i}.weight"), format!("{i}.bias")]).collect();
    let got: Vec<&str> = loaded.weights.tensors.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(got, want);
    for (t, p) in loaded.weights.tensors.iter().zip(params.slices()) {
        assert_eq!(
            t.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            p.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
    }
    // The expected network, named, accepts it; another network does not.
    weights::from_bytes_model(&bytes, FILE, Some(&mnist_plan(name))).unwrap();
    let err = load_err(&bytes, Some(&mnist_plan("lenet5")));
    assert!(matches!(err, WeightsError::ModelMismatch { .. }), "{err}");
    assert!(err.to_string().contains(named(name).unwrap().line) && err.to_string().contains("maxpool(2)"), "{err}");

    let (images, labels) = sample_images(4);
    for engine in [ConvEngine::Naive, ConvEngine::Fast] {
        let mut old = Network::with_params(cfg, params.clone(), engine).unwrap();
        let mut acts = Activations::default();
        old.forward_into(&images, &labels, 0.0, &mut acts).unwrap();
        let want: Vec<u32> = acts.scores.iter().map(|v| v.to_bits()).collect();
        assert_eq!(scores(&mut loaded.sequential(engine).unwrap(), &images, &labels), want, "{name} {engine:?}");
    }
}

#[test]
fn an_old_post_file_loads_as_post_and_predicts_as_the_old_network() {
    old_file_loads_as(ModelConfig::default(), "post", ["0", "2", "4", "6"]);
}

#[test]
fn an_old_post_file_with_a_relu_after_conv2_loads_as_post_relu_and_predicts_as_the_old_network() {
    old_file_loads_as(
        ModelConfig { relu_after_conv2: true, ..ModelConfig::default() },
        "post-relu",
        ["0", "2", "5", "7"],
    );
}

#[test]
fn an_old_file_of_another_size_gets_the_posts_line_with_its_sizes() {
    let cfg = ModelConfig {
        in_height: 8,
        in_width: 8,
        conv1_filters: 2,
        conv2_filters: 3,
        kernel: 3,
        stride: 1,
        pad: 1,
        hidden: 5,
        classes: 4,
        ..ModelConfig::default()
    };
    let (_, bytes) = old_post_file(cfg, 1);
    let loaded = weights::from_bytes_model(&bytes, FILE, None).unwrap();
    assert_eq!(loaded.weights.line, "conv(2,3,pad=1), relu, conv(3,3,pad=1), flatten, fc(5), relu, fc(4)");
    assert_eq!(loaded.weights.input, (1, 8, 8));
    assert_eq!(weights::post_family_config(&loaded.plan), Some(cfg));
    assert_eq!(weights::post_family_spec(&cfg), loaded.plan.spec);
}

#[test]
fn the_posts_names_without_metadata_and_old_session_tensors_still_load() {
    let cfg = ModelConfig::default();
    let params = Params::<f32>::init(&cfg, Init::He, 2);
    let names = cnn_stepper_core::engine::PARAM_NAMES;
    let shapes = Params::<f32>::shapes(&cfg);
    let mut tensors: Vec<Raw> =
        names.iter().zip(&shapes).zip(params.slices()).map(|((n, s), v)| Raw::f32(n, s, v)).collect();
    // A PyTorch port of the post's `Model` (attributes conv1 … fc2), saved without metadata.
    let loaded = weights::from_bytes_model(&write_raw(&tensors, None), FILE, None).unwrap();
    assert_eq!((loaded.weights.line.as_str(), loaded.origin), (named("post").unwrap().line, Origin::PostFile));
    assert_eq!(loaded.integrity, Integrity::Unchecked);

    // An old session file: the post's metadata and tensors with the session's beside them.
    tensors.push(Raw::f32("session.velocity.fc2.bias", &[10], &[0.0; 10]));
    let meta = HashMap::from([
        ("format".to_owned(), FORMAT.to_owned()),
        ("config".to_owned(), serde_json::to_string(&cfg).unwrap()),
        ("session_format".to_owned(), "cnn-stepper session v1".to_owned()),
        ("step".to_owned(), "3".to_owned()),
    ]);
    let loaded = weights::from_bytes_model(&write_raw(&tensors, Some(meta)), FILE, None).unwrap();
    assert_eq!(loaded.weights.line, named("post").unwrap().line);
    assert_eq!(loaded.weights.meta.step, Some(3));
    assert_eq!(loaded.weights.tensors.len(), 8, "the session's tensors are not weights");
}

#[test]
fn a_state_dict_without_metadata_needs_the_expected_network_and_fits_it() {
    let w = small_weights();
    let bytes = write_raw(&Raw::of(&w.tensors), None);
    let err = load_err(&bytes, None);
    assert!(matches!(err, WeightsError::NoModelLine { .. }), "{err}");
    assert!(err.to_string().starts_with("model.safetensors: the file does not say which network"), "{err}");

    let plan = small_plan();
    let loaded = weights::from_bytes_model(&bytes, FILE, Some(&plan)).unwrap();
    assert_eq!((loaded.origin, loaded.integrity), (Origin::StateDict, Integrity::Unchecked));
    assert_eq!(loaded.plan, plan);
    assert_eq!(loaded.weights.line, plan.spec.to_string());
    assert_eq!(bits(&loaded.weights.tensors), bits(&w.tensors));

    // Another tool's metadata counts as none.
    let foreign = HashMap::from([("format".to_owned(), "pt".to_owned())]);
    let bytes = write_raw(&Raw::of(&w.tensors), Some(foreign));
    assert!(matches!(load_err(&bytes, None), WeightsError::NoModelLine { .. }));
    weights::from_bytes_model(&bytes, FILE, Some(&plan)).unwrap();
}

#[test]
fn a_state_dict_that_does_not_fit_the_expected_network_names_the_tensor_and_both_shapes() {
    let bytes = write_raw(&Raw::of(&small_weights().tensors), None);
    // Same layer positions, other sizes: the first tensor that differs is named.
    let other = resolve("conv(4,3,pad=1), tanh, avgpool(2), conv(3,3), relu, flatten, fc(4)", (1, 8, 8), 4).unwrap();
    let err = load_err(&bytes, Some(&other));
    assert_eq!(
        err.to_string(),
        "model.safetensors: tensor \"0.weight\" has shape [2, 1, 3, 3] but this network needs [4, 1, 3, 3]"
    );
    // Other positions: every missing and unexpected tensor is named.
    let shifted = resolve("conv(2,3,pad=1), avgpool(2), conv(3,3), relu, flatten, fc(4)", (1, 8, 8), 4).unwrap();
    let err = load_err(&bytes, Some(&shifted));
    assert_eq!(
        err.to_string(),
        "model.safetensors: missing tensor \"2.weight\"; missing tensor \"2.bias\"; missing tensor \"5.weight\"; \
         missing tensor \"5.bias\"; unexpected tensor \"3.bias\"; unexpected tensor \"3.weight\"; \
         unexpected tensor \"6.bias\"; unexpected tensor \"6.weight\""
    );
}

#[test]
fn f64_tensors_are_accepted_and_rounded_to_f32() {
    let w = small_weights();
    let tensors: Vec<Raw> = w
        .tensors
        .iter()
        .map(|t| Raw {
            name: t.name.clone(),
            dtype: Dtype::F64,
            shape: t.shape.clone(),
            data: t.data.iter().flat_map(|x| (f64::from(*x) * (1.0 + 1e-12)).to_le_bytes()).collect(),
        })
        .collect();
    let loaded = weights::from_bytes_model(&write_raw(&tensors, None), FILE, Some(&small_plan())).unwrap();
    assert_eq!(bits(&loaded.weights.tensors), bits(&w.tensors));
}

#[test]
fn a_file_truncated_at_any_length_is_an_error_naming_the_file() {
    let bytes = small_file();
    let header_end = 8 + usize::try_from(u64::from_le_bytes(bytes[..8].try_into().unwrap())).unwrap();
    for len in 0..bytes.len() {
        let err = load_err(&bytes[..len], None);
        assert!(matches!(err, WeightsError::Header { .. } | WeightsError::Layout { .. }), "length {len}: {err}");
        assert!(err.to_string().starts_with("model.safetensors: "), "{err}");
        if len >= header_end {
            assert!(err.to_string().contains("tensor \"") && err.to_string().contains("cut short"), "{err}");
        }
    }
}

#[test]
fn a_wrong_shape_names_the_tensor_and_both_shapes() {
    let bytes = small_raw_file(|tensors, _| {
        tensors[2] = Raw::f32("3.weight", &[3, 1, 3, 3], &[0.5; 27]);
    });
    let err = load_err(&bytes, None);
    assert!(matches!(err, WeightsError::Shape { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "model.safetensors: tensor \"3.weight\" has shape [3, 1, 3, 3] but this network needs [3, 2, 3, 3]"
    );
}

#[test]
fn a_missing_or_an_extra_tensor_is_named() {
    let bytes = small_raw_file(|tensors, _| tensors.retain(|t| t.name != "6.bias"));
    assert_eq!(load_err(&bytes, None).to_string(), "model.safetensors: missing tensor \"6.bias\"");
    let bytes = small_raw_file(|tensors, _| tensors.push(Raw::f32("7.weight", &[1], &[0.0])));
    assert_eq!(load_err(&bytes, None).to_string(), "model.safetensors: unexpected tensor \"7.weight\"");
    // Session state is not an extra tensor.
    let bytes = small_raw_file(|tensors, _| tensors.push(Raw::f32("session.velocity.6.bias", &[4], &[0.0; 4])));
    weights::from_bytes_model(&bytes, FILE, None).unwrap();
}

#[test]
fn a_flipped_bit_in_a_tensor_or_in_the_model_line_is_caught_by_its_checksum() {
    let bytes = small_file();
    // The last byte of the data belongs to the last tensor in offset order.
    let mut flipped = bytes.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x10;
    let err = load_err(&flipped, None);
    assert!(matches!(&err, WeightsError::Checksum { item, .. } if item.starts_with("tensor \"")), "{err}");
    assert!(err.to_string().contains("does not match its recorded checksum"), "{err}");

    // `avgpool(2)` → `avgpool(3)` in the model line: the checksums are checked before the line is read.
    let text = b"avgpool(2)";
    let at = bytes.windows(text.len()).position(|w| w == text).unwrap() + text.len() - 2;
    let mut flipped = bytes.clone();
    flipped[at] ^= 0x01;
    let err = load_err(&flipped, None);
    assert!(matches!(&err, WeightsError::Checksum { item, .. } if item == "metadata \"model\""), "{err}");
}

#[test]
fn non_finite_weights_are_refused_naming_the_tensor() {
    let bytes = small_raw_file(|tensors, _| {
        let mut v = vec![0.5f32; 12 * 4];
        v[7] = f32::NAN;
        tensors[4] = Raw::f32("6.weight", &[4, 12], &v);
    });
    let err = load_err(&bytes, None);
    assert!(
        matches!(&err, WeightsError::NonFinite { tensor, index: 7, count: 1, .. } if tensor == "6.weight"),
        "{err}"
    );
}

#[test]
fn bad_model_metadata_is_refused_with_the_reason() {
    let cases: [(&str, &str, &str); 5] = [
        ("model", "conv(2,3,pad=1), tanh, avgpool(2), conv(3,3), relu, fc(4)", "layer 6 `fc(4)`: add `flatten`"),
        ("model", "conv(2,3, tanh", "metadata \"model\" `conv(2,3, tanh` on 1×8×8 images cannot be used"),
        ("input", "1×4×4", "metadata \"model\" `"),
        ("input", "eight by eight", "metadata \"input\" = \"eight by eight\" is not channels×height×width"),
        ("classes", "[\"a\", \"b\"]", "4 classes, but 2 class names are given"),
    ];
    for (key, value, want) in cases {
        let bytes = small_raw_file(|_, meta| {
            meta.insert(key.into(), value.into());
        });
        let err = load_err(&bytes, None);
        assert!(err.to_string().starts_with("model.safetensors: ") && err.to_string().contains(want), "{key}: {err}");
    }
    // A page of text in the line is cut short in the message.
    let bytes = small_raw_file(|_, meta| {
        meta.insert("model".into(), "relu, ".repeat(1000));
    });
    let err = load_err(&bytes, None).to_string();
    assert!(err.len() < 600 && err.contains("relu, relu, re…` on 1×8×8 images"), "{} characters: {err}", err.len());
    let bytes = small_raw_file(|_, meta| {
        meta.remove("input");
    });
    assert_eq!(load_err(&bytes, None).to_string(), "model.safetensors: metadata has no \"input\" entry");
    // Without checksums, an unknown key is a damaged key name.
    let bytes = small_raw_file(|_, meta| {
        meta.insert("modle".into(), SMALL.into());
    });
    assert!(matches!(load_err(&bytes, None), WeightsError::Damaged { .. }));
    // A future format is refused, not misread.
    let bytes = small_raw_file(|_, meta| {
        meta.insert("format".into(), "cnn-stepper weights v3".into());
    });
    assert!(load_err(&bytes, None).to_string().contains("\"cnn-stepper weights v3\" is not one this version reads"));
}

#[test]
fn a_file_of_another_network_than_the_expected_one_names_both_lines() {
    let bytes = small_file();
    let other = resolve("conv(2,3,pad=1), relu, avgpool(2), conv(3,3), relu, flatten, fc(4)", (1, 8, 8), 4).unwrap();
    let err = load_err(&bytes, Some(&other));
    assert_eq!(
        err.to_string(),
        format!(
            "model.safetensors: the file's network differs from the expected one: the file holds `{SMALL}` but \
             `conv(2,3,pad=1), relu, avgpool(2), conv(3,3), relu, flatten, fc(4)` is expected"
        )
    );
    let bigger = resolve(SMALL, (1, 10, 10), 4).unwrap();
    let err = load_err(&bytes, Some(&bigger));
    assert!(
        err.to_string().ends_with("the file's network takes 1×8×8 images but 1×10×10 images are expected"),
        "{err}"
    );
}

#[test]
fn saving_what_loading_would_refuse_is_an_error_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    let refused = |edit: &dyn Fn(&mut ModelWeights), want: &str| {
        let mut w = small_weights();
        edit(&mut w);
        let err = weights::save_model(&path, &w).unwrap_err();
        assert!(err.to_string().starts_with(&path.display().to_string()), "{err}");
        assert!(err.to_string().contains(want), "{err}");
        assert!(!path.exists());
    };
    refused(&|w| w.tensors.retain(|t| t.name != "3.bias"), "missing tensor \"3.bias\"");
    refused(&|w| w.tensors.push(w.tensors[0].clone()), "unexpected tensor \"0.weight\"");
    refused(&|w| w.tensors[0].shape = vec![2, 1, 9], "tensor \"0.weight\" has shape [2, 1, 9] but this network needs");
    refused(&|w| w.tensors[1].data.push(0.0), "tensor \"0.bias\" holds 3 values, but its shape [2] takes 2");
    refused(&|w| w.tensors[5].data[0] = f32::INFINITY, "tensor \"6.bias\" holds 1 value that is not a finite number");
    refused(
        &|w| {
            w.class_names.pop();
        },
        "3 class names are given",
    );
    refused(&|w| w.line = "conv(2,3,pad=1), flatten, fc(4)".into(), "missing tensor \"2.weight\"");
    refused(&|w| w.line = "lenet5".into(), "the model line `lenet5` on 1×8×8 images cannot be used");
    refused(&|w| w.input = (1, 2, 2), "smaller than the 3×3 kernel");

    weights::save_model(&path, &small_weights()).unwrap();
    let loaded: LoadedModel = weights::load_model(&path, Some(&small_plan())).unwrap();
    assert_eq!(loaded.weights, small_weights());
}

#[test]
fn loading_a_missing_file_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.safetensors");
    let err = weights::load_model(&path, None).unwrap_err();
    assert!(matches!(err, WeightsError::File(_)));
    assert!(err.to_string().starts_with(&path.display().to_string()), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn bit_flips_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..8)) {
        let mut bytes = small_file();
        for (at, bit) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= 1 << bit;
        }
        let _ = weights::from_bytes_model(&bytes, "flipped", None);
        let _ = weights::from_bytes_model(&bytes, "flipped", Some(&small_plan()));
    }

    #[test]
    fn flips_in_an_unchecked_header_never_panic(flips in proptest::collection::vec((0usize..600, 0u8..8), 1..4)) {
        // Without checksums every flip in the metadata reaches the line and input parsers.
        let mut bytes = small_raw_file(|_, _| {});
        for (at, bit) in flips {
            let i = at % bytes.len();
            bytes[i] ^= 1 << bit;
        }
        let _ = weights::from_bytes_model(&bytes, "flipped", None);
    }

    #[test]
    fn any_metadata_text_never_panics(model in "[ -~]{0,80}", input in "[0-9x× ]{0,12}", classes in "[ -~]{0,30}") {
        let bytes = small_raw_file(|_, meta| {
            meta.insert("model".into(), model);
            meta.insert("input".into(), input);
            meta.insert("classes".into(), classes);
        });
        let _ = weights::from_bytes_model(&bytes, "random", None);
    }
}

/// The `.npz` of a member: its bytes inside the archive (stored uncompressed).
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn the_posts_npz_keeps_the_posts_names_for_post_and_post_relu() {
    for (name, relu) in [("post", false), ("post-relu", true)] {
        let cfg = ModelConfig { relu_after_conv2: relu, ..ModelConfig::default() };
        let (params, bytes) = old_post_file(cfg, 4);
        let loaded = weights::from_bytes_model(&bytes, FILE, None).unwrap();
        let names: Vec<String> = npz::model_names(&loaded.plan).into_iter().map(|n| n.npz).collect();
        assert_eq!(names, npz::NPZ_NAMES, "{name}");
        // Byte for byte what the post's writer makes of the same parameters.
        assert_eq!(
            npz::to_bytes_model(&loaded.plan, &loaded.weights.tensors).unwrap(),
            npz::to_bytes(&params).unwrap()
        );
    }
}

#[test]
fn other_networks_npz_names_follow_the_layers_student_names_with_fc_weights_transposed() {
    let plan = mnist_plan("lenet5");
    let w = weights_of(&plan, 2);
    let names = npz::model_names(&plan);
    let want = [
        ("0.weight", "conv1_W", false),
        ("0.bias", "conv1_b", false),
        ("3.weight", "conv2_W", false),
        ("3.bias", "conv2_b", false),
        ("7.weight", "fc1_W", true),
        ("7.bias", "fc1_b", false),
        ("9.weight", "fc2_W", true),
        ("9.bias", "fc2_b", false),
        ("11.weight", "fc3_W", true),
        ("11.bias", "fc3_b", false),
    ];
    let want: Vec<NpzName> =
        want.iter().map(|(t, n, tr)| NpzName { tensor: (*t).into(), npz: (*n).into(), transposed: *tr }).collect();
    assert_eq!(names, want);

    let bytes = npz::to_bytes_model(&plan, &w.tensors).unwrap();
    let fc3 = w.tensor("11.weight").unwrap();
    let as_stored = ndarray::Array2::from_shape_vec((10, 84), fc3.data.clone()).unwrap();
    assert!(contains(&bytes, &npz::npy_f32(&as_stored.t())), "fc3_W is [IN, OUT]");
    assert!(!contains(&bytes, &npz::npy_f32(&as_stored)), "not PyTorch's [OUT, IN]");
    let conv2 = w.tensor("3.weight").unwrap();
    let conv2 = ndarray::ArrayD::from_shape_vec(conv2.shape.clone(), conv2.data.clone()).unwrap();
    assert!(contains(&bytes, &npz::npy_f32(&conv2)), "conv2_W is [F, C, K, K] as in PyTorch");
    assert!(contains(&bytes, b"fc3_W.npy") && contains(&bytes, b"conv1_b.npy"));

    let dir = tempfile::tempdir().unwrap();
    npz::save_model(&dir.path().join("w.npz"), &plan, &w.tensors).unwrap();
    assert_eq!(fs::read(dir.path().join("w.npz")).unwrap(), bytes);
}

#[test]
fn an_npz_of_tensors_that_do_not_fit_the_network_names_the_tensor() {
    let plan = small_plan();
    let mut w = small_weights();
    w.tensors[2].shape = vec![3, 2, 9];
    let err = npz::to_bytes_model(&plan, &w.tensors).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot export the weights as .npz: tensor \"3.weight\" has shape [3, 2, 9] but this network needs [3, 2, 3, 3]"
    );
    w.tensors.remove(2);
    let err = npz::to_bytes_model(&plan, &w.tensors).unwrap_err();
    assert!(err.to_string().ends_with("tensor \"3.weight\" is missing"), "{err}");
}
