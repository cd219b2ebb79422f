//! Weights files: round trips, every kind of bad file, atomic saves, and PyTorch interop.

// `allow-unwrap-in-tests` covers `#[test]` functions but not this file's helpers; a panic is
// how a helper here reports a broken test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use cnn_stepper_core::engine::weights::{self, FORMAT, Loaded, WeightsError, WeightsMeta};
use cnn_stepper_core::engine::{Activations, ConvEngine, Init, ModelConfig, Network, PARAM_NAMES, Params, argmax};
use proptest::prelude::*;
use safetensors::tensor::{Dtype, TensorView};

/// The tests' tiny network (see `common::tiny`).
fn small() -> ModelConfig {
    common::tiny()
}

fn small_params(seed: u64) -> Params<f32> {
    Params::init(&small(), Init::He, seed)
}

fn small_meta() -> WeightsMeta {
    WeightsMeta { config: small(), preset: Some("recommended".into()), seed: Some(7), step: Some(1234) }
}

fn small_file() -> Vec<u8> {
    weights::to_bytes(&small_params(3), &small_meta()).unwrap()
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
}

/// Our tensors under `names` (in [`PARAM_NAMES`] order) as raw F32 entries.
fn raw_params(p: &Params<f32>, cfg: &ModelConfig, names: &[&str]) -> Vec<Raw> {
    let shapes = Params::<f32>::shapes(cfg);
    names.iter().zip(shapes).zip(p.slices()).map(|((n, s), v)| Raw::f32(n, &s, v)).collect()
}

fn our_metadata(cfg: &ModelConfig) -> HashMap<String, String> {
    HashMap::from([
        ("format".to_owned(), FORMAT.to_owned()),
        ("config".to_owned(), serde_json::to_string(cfg).unwrap()),
    ])
}

fn write_raw(tensors: &[Raw], metadata: Option<HashMap<String, String>>) -> Vec<u8> {
    let views: Vec<(String, TensorView<'_>)> =
        tensors.iter().map(|t| (t.name.clone(), TensorView::new(t.dtype, t.shape.clone(), &t.data).unwrap())).collect();
    safetensors::serialize(views, metadata).unwrap()
}

fn load_err(bytes: &[u8], expected: Option<&ModelConfig>) -> WeightsError {
    match weights::from_bytes(bytes, "model.safetensors", expected) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

fn bits(p: &Params<f32>) -> Vec<Vec<u32>> {
    p.slices().iter().map(|s| s.iter().map(|v| v.to_bits()).collect()).collect()
}

#[test]
fn round_trip_gives_bit_identical_params_and_the_same_metadata() {
    let params = small_params(3);
    let meta = small_meta();
    let bytes = weights::to_bytes(&params, &meta).unwrap();
    let Loaded { params: back, meta: back_meta, .. } = weights::from_bytes(&bytes, "mem", None).unwrap();
    assert_eq!(bits(&back), bits(&params));
    assert_eq!(back_meta, meta);

    let Loaded { params: back, meta: back_meta, .. } = weights::from_bytes(&bytes, "mem", Some(&small())).unwrap();
    assert_eq!(bits(&back), bits(&params));
    assert_eq!(back_meta, meta);
}

#[test]
fn round_trip_through_a_file_keeps_absent_metadata_absent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    let params = small_params(4);
    let meta = WeightsMeta::new(small());
    weights::save(&path, &params, &meta).unwrap();
    let Loaded { params: back, meta: back_meta, .. } = weights::load(&path, None).unwrap();
    assert_eq!(bits(&back), bits(&params));
    assert_eq!(back_meta, meta);
}

#[test]
fn a_file_has_pytorch_names_f32_and_our_metadata() {
    let bytes = small_file();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let info = header.metadata().as_ref().unwrap();
    assert_eq!(info["format"], "cnn-stepper weights v1");
    assert_eq!(serde_json::from_str::<ModelConfig>(&info["config"]).unwrap(), small());
    assert_eq!(info["preset"], "recommended");
    assert_eq!(info["seed"], "7");
    assert_eq!(info["step"], "1234");
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names = st.names();
    names.sort_unstable();
    let mut want = PARAM_NAMES.to_vec();
    want.sort_unstable();
    assert_eq!(names, want);
    for (name, shape) in PARAM_NAMES.iter().zip(Params::<f32>::shapes(&small())) {
        let t = st.tensor(name).unwrap();
        assert_eq!(t.dtype(), Dtype::F32);
        assert_eq!(t.shape(), shape.as_slice());
    }
}

#[test]
fn the_same_weights_and_metadata_always_give_the_same_bytes() {
    // The metadata goes through a HashMap, whose order differs between maps; the header must not.
    let first = small_file();
    for _ in 0..20 {
        assert_eq!(small_file(), first);
    }
    assert!(safetensors::SafeTensors::deserialize(&first).is_ok());
}

#[test]
fn saving_params_that_do_not_match_the_config_is_an_error() {
    let mut meta = small_meta();
    meta.config.hidden = 6;
    let err = weights::to_bytes(&small_params(1), &meta).unwrap_err();
    assert_eq!(err.to_string(), "weights: tensor \"fc1.weight\" has shape [5, 192] but this network needs [6, 192]");
}

#[test]
fn f64_tensors_are_accepted_and_rounded_to_f32() {
    let cfg = small();
    let params = small_params(5);
    let tensors: Vec<Raw> = PARAM_NAMES
        .iter()
        .zip(Params::<f32>::shapes(&cfg))
        .zip(params.slices())
        .map(|((name, shape), v)| Raw {
            name: (*name).into(),
            dtype: Dtype::F64,
            shape,
            // A value between two f32s, so the test sees that it is rounded, not misread.
            data: v.iter().flat_map(|x| (f64::from(*x) * (1.0 + 1e-12)).to_le_bytes()).collect(),
        })
        .collect();
    let bytes = write_raw(&tensors, Some(our_metadata(&cfg)));
    let Loaded { params: back, .. } = weights::from_bytes(&bytes, "f64.safetensors", None).unwrap();
    assert_eq!(bits(&back), bits(&params));
}

#[test]
fn a_missing_tensor_is_named() {
    let cfg = small();
    let mut tensors = raw_params(&small_params(1), &cfg, &PARAM_NAMES);
    tensors.retain(|t| t.name != "fc1.bias");
    let err = load_err(&write_raw(&tensors, Some(our_metadata(&cfg))), None);
    assert!(
        matches!(&err, WeightsError::Names { missing, unexpected, .. } if missing == &["fc1.bias"] && unexpected.is_empty())
    );
    assert_eq!(err.to_string(), "model.safetensors: missing tensor \"fc1.bias\"");
}

#[test]
fn an_unexpected_tensor_is_named() {
    let cfg = small();
    let mut tensors = raw_params(&small_params(1), &cfg, &PARAM_NAMES);
    tensors.push(Raw::f32("foo", &[1], &[0.0]));
    let err = load_err(&write_raw(&tensors, Some(our_metadata(&cfg))), None);
    assert_eq!(err.to_string(), "model.safetensors: unexpected tensor \"foo\"");
}

#[test]
fn a_renamed_tensor_is_both_missing_and_unexpected() {
    let cfg = small();
    let mut tensors = raw_params(&small_params(1), &cfg, &PARAM_NAMES);
    tensors[7].name = "fc2.b".into();
    let err = load_err(&write_raw(&tensors, Some(our_metadata(&cfg))), None);
    assert_eq!(err.to_string(), "model.safetensors: missing tensor \"fc2.bias\"; unexpected tensor \"fc2.b\"");
}

#[test]
fn session_tensors_are_ignored() {
    let cfg = small();
    let params = small_params(2);
    let mut tensors = raw_params(&params, &cfg, &PARAM_NAMES);
    tensors.push(Raw { name: "session.rng".into(), dtype: Dtype::U8, shape: vec![3], data: vec![1, 2, 3] });
    tensors.push(Raw::f32("session.velocity.fc2.bias", &[4], &[0.0; 4]));
    let Loaded { params: back, meta, .. } =
        weights::from_bytes(&write_raw(&tensors, Some(our_metadata(&cfg))), "s", None).unwrap();
    assert_eq!(bits(&back), bits(&params));
    assert_eq!(meta.config, cfg);
}

#[test]
fn a_wrong_shape_names_the_tensor_and_both_shapes() {
    let cfg = small();
    let mut tensors = raw_params(&small_params(1), &cfg, &PARAM_NAMES);
    tensors[2] = Raw::f32("conv2.weight", &[3, 1, 3, 3], &[0.5; 27]);
    let err = load_err(&write_raw(&tensors, Some(our_metadata(&cfg))), None);
    assert_eq!(
        err.to_string(),
        "model.safetensors: tensor \"conv2.weight\" has shape [3, 1, 3, 3] but this network needs [3, 2, 3, 3]"
    );
}

#[test]
fn a_wrong_bias_length_without_metadata_is_a_shape_error() {
    let cfg = small();
    let mut tensors = raw_params(&small_params(1), &cfg, &PARAM_NAMES);
    tensors[5] = Raw::f32("fc1.bias", &[6], &[0.0; 6]);
    let err = load_err(&write_raw(&tensors, None), None);
    assert_eq!(err.to_string(), "model.safetensors: tensor \"fc1.bias\" has shape [6] but this network needs [5]");
}

#[test]
fn f16_and_i32_tensors_are_refused_by_name_and_type() {
    let cfg = small();
    for (dtype, width, shown) in [(Dtype::F16, 2, "F16"), (Dtype::I32, 4, "I32")] {
        let mut tensors = raw_params(&small_params(1), &cfg, &PARAM_NAMES);
        tensors[7] = Raw { name: "fc2.bias".into(), dtype, shape: vec![4], data: vec![0; 4 * width] };
        let err = load_err(&write_raw(&tensors, Some(our_metadata(&cfg))), None);
        assert_eq!(err.to_string(), format!("model.safetensors: tensor \"fc2.bias\" is {shown}; expected F32 or F64"));
    }
}

#[test]
fn a_file_truncated_at_any_length_is_an_error() {
    let bytes = small_file();
    let header_end = 8 + usize::try_from(u64::from_le_bytes(bytes[..8].try_into().unwrap())).unwrap();
    for len in 0..bytes.len() {
        let err = load_err(&bytes[..len], None);
        assert!(matches!(err, WeightsError::Header { .. } | WeightsError::Layout { .. }), "length {len}: {err}");
        assert!(err.to_string().starts_with("model.safetensors: "), "{err}");
        // Cut inside the tensor data: the tensor that runs past the end is named.
        if len >= header_end {
            assert!(err.to_string().contains("tensor \"") && err.to_string().contains("cut short"), "{err}");
        }
    }
}

#[test]
fn an_expected_config_mismatch_names_each_differing_field() {
    let bytes = small_file();
    let expected = ModelConfig { hidden: 6, classes: 10, ..small() };
    let err = load_err(&bytes, Some(&expected));
    let WeightsError::ConfigMismatch { differences, .. } = &err else { panic!("{err}") };
    let fields: Vec<&str> = differences.iter().map(|d| d.field.as_str()).collect();
    assert_eq!(fields, ["classes", "hidden"]);
    assert_eq!(
        err.to_string(),
        "model.safetensors: the file's network differs from the expected one: \
         classes is 4 in the file but 10 is expected; hidden is 5 in the file but 6 is expected"
    );
}

#[test]
fn an_expected_config_mismatch_is_found_without_metadata_too() {
    let cfg = small();
    let bytes = write_raw(&raw_params(&small_params(1), &cfg, &PARAM_NAMES), None);
    let expected = ModelConfig { conv2_filters: 4, ..cfg };
    let err = load_err(&bytes, Some(&expected));
    let WeightsError::ConfigMismatch { differences, .. } = &err else { panic!("{err}") };
    assert_eq!(differences.len(), 1, "{err}");
    assert_eq!(differences[0].field, "conv2_filters");
}

#[test]
fn a_file_without_metadata_gets_its_config_from_the_shapes() {
    let cfg = small();
    let params = small_params(6);
    let bytes = write_raw(&raw_params(&params, &cfg, &PARAM_NAMES), None);
    let Loaded { params: back, meta, .. } = weights::from_bytes(&bytes, "plain", None).unwrap();
    assert_eq!(meta, WeightsMeta::new(cfg));
    assert_eq!(bits(&back), bits(&params));

    // Another tool's metadata counts as none.
    let foreign = HashMap::from([("format".to_owned(), "pt".to_owned())]);
    let bytes = write_raw(&raw_params(&params, &cfg, &PARAM_NAMES), Some(foreign));
    assert_eq!(weights::from_bytes(&bytes, "pt", None).unwrap().meta, WeightsMeta::new(cfg));
}

#[test]
fn a_file_without_metadata_that_fits_the_expected_network_takes_its_config() {
    // Inference alone refuses 4×8 (not square); the shapes fit the expected network, so it loads.
    let cfg = ModelConfig { in_height: 4, in_width: 8, relu_after_conv2: true, ..small() };
    let params = Params::init(&cfg, Init::He, 1);
    let bytes = write_raw(&raw_params(&params, &cfg, &PARAM_NAMES), None);
    let Loaded { params: back, meta, .. } = weights::from_bytes(&bytes, "plain", Some(&cfg)).unwrap();
    assert_eq!(meta.config, cfg);
    assert_eq!(bits(&back), bits(&params));
}

#[test]
fn inferring_from_fc1_inputs_that_are_not_a_square_is_an_error() {
    let cfg = ModelConfig { in_height: 4, in_width: 8, ..small() };
    let bytes = write_raw(&raw_params(&Params::init(&cfg, Init::He, 1), &cfg, &PARAM_NAMES), None);
    let err = load_err(&bytes, None);
    assert!(matches!(err, WeightsError::Infer { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "model.safetensors: cannot infer the network from the tensor shapes: \"fc1.weight\" has 96 inputs \
         = 3 filters × 32, and 32 is not a square side × side"
    );
    // 64 is square, but 3 × 64 + 1 inputs do not split over conv2's filters.
    let mut tensors = raw_params(&small_params(1), &small(), &PARAM_NAMES);
    tensors[4] = Raw::f32("fc1.weight", &[5, 193], &[0.0; 5 * 193]);
    let err = load_err(&write_raw(&tensors, None), None);
    assert!(err.to_string().contains("not a multiple of conv2's 3 filters"), "{err}");
}

#[test]
fn an_even_kernel_is_inferred_with_the_pixels_it_loses() {
    let cfg = ModelConfig { kernel: 4, pad: 1, ..small() };
    let params = Params::init(&cfg, Init::He, 1);
    let bytes = write_raw(&raw_params(&params, &cfg, &PARAM_NAMES), None);
    assert_eq!(weights::from_bytes(&bytes, "even", None).unwrap().meta.config, cfg);
}

#[test]
fn sequential_index_names_load() {
    let cfg = small();
    let params = small_params(8);
    let names = ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias", "6.weight", "6.bias"];
    let Loaded { params: back, meta, .. } =
        weights::from_bytes(&write_raw(&raw_params(&params, &cfg, &names), None), "seq", None).unwrap();
    assert_eq!(bits(&back), bits(&params));
    assert_eq!(meta.config, cfg);
}

#[test]
fn a_full_size_pytorch_state_dict_infers_the_default_network() {
    // 25,088 = 32 filters × 28 × 28 with a 5×5 kernel: the post's network, padding 2.
    let cfg = ModelConfig::default();
    let names = ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias", "6.weight", "6.bias"];
    let params = Params::<f32>::zeros(&cfg);
    let Loaded { meta, .. } =
        weights::from_bytes(&write_raw(&raw_params(&params, &cfg, &names), None), "torch", None).unwrap();
    assert_eq!(meta.config, cfg);
}

#[test]
fn sequential_names_shifted_by_a_relu_after_conv2_set_it() {
    let cfg = small();
    let params = small_params(8);
    let names = ["0.weight", "0.bias", "2.weight", "2.bias", "5.weight", "5.bias", "7.weight", "7.bias"];
    let bytes = write_raw(&raw_params(&params, &cfg, &names), None);
    let Loaded { params: back, meta, .. } = weights::from_bytes(&bytes, "seq", None).unwrap();
    assert_eq!(bits(&back), bits(&params));
    assert_eq!(meta.config, ModelConfig { relu_after_conv2: true, ..cfg });
    // Those names cannot be the network without that ReLU.
    let err = load_err(&bytes, Some(&cfg));
    assert!(
        matches!(&err, WeightsError::ConfigMismatch { differences, .. } if differences[0].field == "relu_after_conv2")
    );
}

#[test]
fn sequential_names_with_a_missing_layer_name_the_sequential_tensor() {
    let cfg = small();
    let names = ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias", "6.weight", "6.bias"];
    let mut tensors = raw_params(&small_params(1), &cfg, &names);
    tensors.pop();
    let err = load_err(&write_raw(&tensors, None), None);
    assert_eq!(err.to_string(), "model.safetensors: missing tensor \"6.bias\"");
}

#[test]
fn an_unknown_format_version_or_bad_metadata_is_an_error() {
    let cfg = small();
    let tensors = raw_params(&small_params(1), &cfg, &PARAM_NAMES);
    let mut newer = our_metadata(&cfg);
    newer.insert("format".into(), "cnn-stepper weights v3".into());
    let err = load_err(&write_raw(&tensors, Some(newer)), None);
    assert!(err.to_string().contains("\"cnn-stepper weights v3\" is not one this version reads"), "{err}");
    // A model file (any network) is not read as the post's network, and the message says how.
    let mut model_file = our_metadata(&cfg);
    model_file.insert("format".into(), "cnn-stepper weights v2".into());
    let err = load_err(&write_raw(&tensors, Some(model_file)), None);
    assert!(err.to_string().contains("read it with `load_model`"), "{err}");

    let mut bad_seed = our_metadata(&cfg);
    bad_seed.insert("seed".into(), "-1".into());
    let err = load_err(&write_raw(&tensors, Some(bad_seed)), None);
    assert_eq!(err.to_string(), "model.safetensors: metadata \"seed\" = \"-1\" is not a whole number");

    let mut bad_config = our_metadata(&cfg);
    bad_config.insert("config".into(), "{\"hidden\": 5}".into());
    let err = load_err(&write_raw(&tensors, Some(bad_config)), None);
    assert!(err.to_string().starts_with("model.safetensors: metadata \"config\" is not a network configuration"));

    let mut huge = our_metadata(&ModelConfig { pad: usize::MAX, ..cfg });
    huge.insert("step".into(), "3".into());
    let err = load_err(&write_raw(&tensors, Some(huge)), None);
    assert!(matches!(err, WeightsError::Config { .. }), "{err}");
}

#[test]
fn loading_a_missing_file_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.safetensors");
    let err = weights::load(&path, None).unwrap_err();
    assert!(matches!(err, WeightsError::File(_)));
    assert!(err.to_string().starts_with(&path.display().to_string()), "{err}");
}

#[test]
fn saving_into_a_missing_directory_is_an_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/dir/model.safetensors");
    let err = weights::save(&path, &small_params(1), &small_meta()).unwrap_err();
    assert!(matches!(err, WeightsError::File(_)));
    assert!(err.to_string().starts_with(&path.display().to_string()), "{err}");
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[test]
fn saving_replaces_the_previous_file_and_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    weights::save(&path, &small_params(1), &small_meta()).unwrap();
    weights::save(&path, &small_params(2), &small_meta()).unwrap();
    assert_eq!(bits(&weights::load(&path, None).unwrap().params), bits(&small_params(2)));
    assert_eq!(entries(dir.path()), ["model.safetensors"]);
}

#[test]
fn a_failed_save_leaves_the_target_intact_and_no_temporary_file() {
    // The rename fails because the target is a (non-empty) directory: a failure that root's
    // disregard for permission bits cannot hide.
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("model.safetensors");
    fs::create_dir(&target).unwrap();
    fs::write(target.join("keep"), b"old").unwrap();
    let err = weights::save(&target, &small_params(1), &small_meta()).unwrap_err();
    assert!(matches!(err, WeightsError::File(_)));
    assert!(err.to_string().starts_with(&target.display().to_string()), "{err}");
    assert_eq!(fs::read(target.join("keep")).unwrap(), b"old");
    assert_eq!(entries(dir.path()), ["model.safetensors"]);

    // Params that do not fit the config fail before anything is written.
    let file = dir.path().join("old.safetensors");
    weights::save(&file, &small_params(1), &small_meta()).unwrap();
    let before = fs::read(&file).unwrap();
    let wrong = WeightsMeta { config: ModelConfig { classes: 3, ..small() }, ..small_meta() };
    let err = weights::save(&file, &small_params(2), &wrong).unwrap_err();
    assert!(err.to_string().starts_with(&file.display().to_string()), "{err}");
    assert_eq!(fs::read(&file).unwrap(), before);
    assert_eq!(entries(dir.path()), ["model.safetensors", "old.safetensors"]);
}

#[test]
fn write_atomically_replaces_contents_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.csv");
    cnn_stepper_core::fileio::write_atomically(&path, b"a much longer first version\n").unwrap();
    cnn_stepper_core::fileio::write_atomically(&path, b"short\n").unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"short\n");
    assert_eq!(entries(dir.path()), ["notes.csv"]);
    assert!(cnn_stepper_core::fileio::write_atomically(Path::new("/"), b"x").is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        prop_assert!(weights::from_bytes(&bytes, "random", None).is_err());
    }

    #[test]
    fn a_random_header_length_and_json_never_panic(len in any::<u64>(), json in "[ -~]{0,200}") {
        let mut bytes = len.to_le_bytes().to_vec();
        bytes.extend_from_slice(json.as_bytes());
        let _ = weights::from_bytes(&bytes, "random", None);
    }

    #[test]
    fn bit_flips_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..8)) {
        let mut bytes = small_file();
        for (at, bit) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= 1 << bit;
        }
        let _ = weights::from_bytes(&bytes, "flipped", None);
        let _ = weights::from_bytes(&bytes, "flipped", Some(&small()));
    }

    #[test]
    fn header_bit_flips_never_panic(flips in proptest::collection::vec((0usize..400, 0u8..8), 1..4)) {
        // The header is where the parsing happens; aim most flips there.
        let mut bytes = small_file();
        for (at, bit) in flips {
            let i = at % bytes.len();
            bytes[i] ^= 1 << bit;
        }
        let _ = weights::from_bytes(&bytes, "flipped", None);
    }
}

/// What `scripts/pytorch_interop.py fixture` wrote next to a PyTorch state dict.
#[derive(serde::Deserialize)]
struct TorchLogits {
    input_shape: Vec<usize>,
    inputs: Vec<f32>,
    logits: Vec<Vec<f32>>,
    classes: Vec<usize>,
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// The fixed inputs of the interop script: pixel `i` of the flattened batch is
/// `((i * 37 + 11) % 101) / 50 - 1` in f32.
fn fixed_inputs(len: usize) -> Vec<f32> {
    (0..len).map(|i| ((i * 37 + 11) % 101) as f32 / 50.0 - 1.0).collect()
}

fn check_against_torch(stem: &str, relu_after_conv2: bool) {
    let Loaded { params, meta, .. } = weights::load(&fixture(&format!("{stem}.safetensors")), None).unwrap();
    let cfg = ModelConfig { relu_after_conv2, ..small() };
    assert_eq!(meta, WeightsMeta::new(cfg));
    // The same file also loads when the caller says which network it wants.
    weights::load(&fixture(&format!("{stem}.safetensors")), Some(&cfg)).unwrap();

    let expected: TorchLogits =
        serde_json::from_str(&fs::read_to_string(fixture(&format!("{stem}_logits.json"))).unwrap()).unwrap();
    let n = expected.input_shape[0];
    assert_eq!(expected.input_shape, [n, 1, 8, 8]);
    let inputs = fixed_inputs(n * 64);
    assert_eq!(
        inputs.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        expected.inputs.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        "the documented input formula and the fixture disagree"
    );
    for engine in [ConvEngine::Naive, ConvEngine::Fast] {
        let mut net = Network::with_params(cfg, params.clone(), engine).unwrap();
        let mut acts = Activations::default();
        net.forward_into(&inputs, &vec![0; n], 0.0, &mut acts).unwrap();
        let mut max_diff = 0.0f32;
        for (i, (got, want)) in acts.scores.chunks(cfg.classes).zip(&expected.logits).enumerate() {
            for (g, w) in got.iter().zip(want) {
                max_diff = max_diff.max((g - w).abs());
                assert!(
                    (g - w).abs() <= 1e-5 * (1.0 + w.abs()),
                    "{stem} {engine:?} image {i}: {got:?} vs torch {want:?}"
                );
            }
            assert_eq!(argmax(got), expected.classes[i], "{stem} {engine:?} image {i}");
        }
        println!("{stem} {engine:?}: max |rust - torch| = {max_diff:e}");
    }
}

/// A PyTorch state dict loads and gives PyTorch's logits, in both conv engines. The fixture
/// comes from `python3 scripts/pytorch_interop.py fixture` (torch 2.15):
///
/// ```python
/// torch.manual_seed(0)
/// model = torch.nn.Sequential(
///     torch.nn.Conv2d(1, 2, 3, stride=1, padding=1), torch.nn.ReLU(),
///     torch.nn.Conv2d(2, 3, 3, stride=1, padding=1),
///     torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 5), torch.nn.ReLU(), torch.nn.Linear(5, 4),
/// ).eval()
/// save_file(model.state_dict(), "tests/fixtures/torch_small.safetensors")
/// i = torch.arange(3 * 1 * 8 * 8)
/// x = (((i * 37 + 11) % 101).to(torch.float32) / 50.0 - 1.0).reshape(3, 1, 8, 8)
/// logits = model(x)  # -> tests/fixtures/torch_small_logits.json
/// ```
///
/// With PyTorch's default init this small network predicts class 1 for nearly every input, so
/// the classes agree trivially; the logits (matched to 1e-5) are the real check.
#[test]
fn pytorch_sequential_state_dict_predicts_the_same_logits() {
    check_against_torch("torch_small", false);
}

/// As [`pytorch_sequential_state_dict_predicts_the_same_logits`] with a `torch.nn.ReLU()` after
/// the second `Conv2d`, which shifts the keys to `0, 2, 5, 7`.
#[test]
fn pytorch_sequential_with_relu_after_conv2_predicts_the_same_logits() {
    check_against_torch("torch_small_relu_conv2", true);
}

/// The reverse direction, by hand: saves the full-size network and its logits for PyTorch.
///
/// ```text
/// cargo test -p cnn-stepper-core --test weights -- --ignored full_size_network_for_pytorch
/// python3 scripts/pytorch_interop.py check target/interop/full.safetensors \
///     --expect target/interop/full_logits.json
/// ```
#[test]
#[ignore = "writes target/interop/ for scripts/pytorch_interop.py; run by hand"]
fn full_size_network_for_pytorch() {
    let cfg = ModelConfig::default();
    let params = Params::init(&cfg, Init::He, 1);
    // The workspace's target/, where the script's documented command looks.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/interop");
    fs::create_dir_all(&dir).unwrap();
    let meta = WeightsMeta { config: cfg, preset: Some("recommended".into()), seed: Some(1), step: Some(0) };
    weights::save(&dir.join("full.safetensors"), &params, &meta).unwrap();

    let n = 4;
    let inputs = fixed_inputs(n * cfg.in_height * cfg.in_width);
    let mut logits = Vec::new();
    for engine in [ConvEngine::Naive, ConvEngine::Fast] {
        let mut net = Network::with_params(cfg, params.clone(), engine).unwrap();
        let mut acts = Activations::default();
        net.forward_into(&inputs, &vec![0; n], 0.0, &mut acts).unwrap();
        logits.push(acts.scores.clone());
    }
    let max_engine_diff = logits[0].iter().zip(&logits[1]).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    let rows: Vec<Vec<f32>> = logits[1].chunks(cfg.classes).map(<[f32]>::to_vec).collect();
    let classes: Vec<usize> = rows.iter().map(|r| argmax(r)).collect();
    let json = serde_json::json!({
        "engine": "fast",
        "max_naive_fast_diff": max_engine_diff,
        "input_shape": [n, 1, cfg.in_height, cfg.in_width],
        "inputs": inputs,
        "logits": rows,
        "classes": classes,
    });
    fs::write(dir.join("full_logits.json"), serde_json::to_string_pretty(&json).unwrap()).unwrap();
    println!("classes {classes:?}, naive vs fast max diff {max_engine_diff:e}");
}
