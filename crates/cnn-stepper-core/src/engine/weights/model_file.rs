//! Model files: the weights of any network of [`crate::engine::model`], with the network itself.
//!
//! A model file is a safetensors file whose tensors are the state dict PyTorch gives the
//! equivalent `torch.nn.Sequential`: `<index>.weight` and `<index>.bias` for every `conv` and
//! `fc`, the index being the layer's position in the model line from 0 (LeNet-5's are `0`, `3`,
//! `7`, `9`, `11`), little-endian `F32`, shapes `[F, C, K, K]` / `[F]` for a conv and
//! `[OUT, IN]` / `[OUT]` for an fc. `safetensors.torch.load_file` followed by
//! `model.load_state_dict` loads it into that `Sequential` as it is.
//!
//! # Metadata
//! | key        | value                                                                  |
//! |------------|------------------------------------------------------------------------|
//! | `format`   | [`MODEL_FORMAT`], `cnn-stepper weights v2`                              |
//! | `model`    | the model line, e.g. `conv(6,5,pad=2), relu, maxpool(2), …, fc(10)`     |
//! | `input`    | one image's shape, channels×height×width: `1×28×28` (`x` is read too)   |
//! | `classes`  | the class names as a JSON list of strings, `["0","1",…]`; optional      |
//! | `preset`, `seed`, `step` | the run's start and progress, as in post files; optional |
//! | `checksums`| CRC-32 of every other value and tensor (see [`super`])                  |
//!
//! The number of classes is the last `fc`'s outputs; `classes`, when present, names each.
//! Session files add their own keys and `session.*` tensors, which this reader skips.
//!
//! # What [`load_model`] reads
//! - **Model files**: the line is checked against the input (a line that does not fit is
//!   refused, with the reason at the layer), then every tensor against the plan: missing and
//!   unexpected tensors are named, a wrong shape names the tensor with both shapes.
//! - **Post files** written before networks were lines (format [`super::FORMAT`], or a file
//!   without metadata whose tensors are named `conv1.weight` … `fc2.bias`): read as the post's
//!   family of networks ([`post_family_spec`]); the tensors are renamed `0`, `2`, `4`, `6`, or
//!   `0`, `2`, `5`, `7` when the file's configuration has a ReLU after conv2 (`post-relu`).
//! - **PyTorch state dicts** (`safetensors.torch.save_file`, no metadata of ours): the file
//!   does not say which network it holds, so the caller must (`expected`); the tensors are
//!   checked against it as above, and without it the load fails with
//!   [`WeightsError::NoModelLine`].
//!
//! With `expected`, a file that names its network must hold exactly that one (the same line on
//! the same input); otherwise [`WeightsError::ModelMismatch`] names both lines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use safetensors::tensor::Dtype;

use super::{
    CHECKSUMS_KEY, Entry, FORMAT, Integrity, Parsed, SESSION_PREFIX, WeightsError, check_finite, encode_file,
    read_file, to_f32,
};
use crate::engine::model::{LayerSpec, ModelSpec, ParamTensor, Plan, Sequential, Shape, SpecError};
use crate::engine::{ConvEngine, EngineError, ModelConfig, PARAM_NAMES, Params};
use crate::fileio;

/// The `"format"` metadata value of model files.
pub const MODEL_FORMAT: &str = "cnn-stepper weights v2";
/// The metadata key holding the model line.
pub const MODEL_KEY: &str = "model";
/// The metadata key holding one image's shape, `C×H×W`.
pub const INPUT_KEY: &str = "input";
/// The metadata key holding the class names, a JSON list of strings.
pub const CLASSES_KEY: &str = "classes";

/// Every metadata key a model file (or a session file built on one) may hold. A file without
/// checksums with any other key is damaged (a flipped bit in a key name) and is refused.
const MODEL_KEYS: [&str; 10] =
    ["format", MODEL_KEY, INPUT_KEY, CLASSES_KEY, "preset", "seed", "step", "session_format", "session", CHECKSUMS_KEY];

/// Names errors from [`to_bytes_model`], which has no file yet.
const UNSAVED: &str = "weights";

/// What a file says about the run its weights come from; each `None` for files from elsewhere.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelMeta {
    /// The preset the run started from (e.g. `"recommended"`).
    pub preset: Option<String>,
    /// The seed the run started from.
    pub seed: Option<u64>,
    /// Training steps taken when the file was saved.
    pub step: Option<u64>,
}

/// A network and its weights, as a model file holds them.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelWeights {
    /// The model line, e.g. `conv(6,5,pad=2), relu, maxpool(2), …, fc(10)` (a line, not a
    /// name: [`resolve`](crate::engine::model::resolve) a name first). Saving writes it in
    /// [`ModelSpec`]'s canonical form; loading gives it as the file wrote it.
    pub line: String,
    /// One image's (channels, height, width).
    pub input: (usize, usize, usize),
    /// The name of each class, or empty when the file does not say. When given there must be
    /// one per output of the last `fc`.
    pub class_names: Vec<String>,
    /// The parameters, `<index>.weight` / `<index>.bias`, in `state_dict` order.
    pub tensors: Vec<ParamTensor<f32>>,
    /// The run they come from.
    pub meta: ModelMeta,
}

impl ModelWeights {
    /// The weights `tensors` of `plan`'s network, with no class names and no run metadata.
    pub fn new(plan: &Plan, tensors: Vec<ParamTensor<f32>>) -> Self {
        Self {
            line: plan.spec.to_string(),
            input: plan_input(plan),
            class_names: Vec::new(),
            tensors,
            meta: ModelMeta::default(),
        }
    }

    /// The network `net` and its current parameters.
    pub fn of(net: &Sequential<f32>) -> Self {
        Self::new(net.plan(), net.params().to_vec())
    }

    /// The line checked against the input: its classes are the last `fc`'s outputs, which
    /// must be as many as the class names when there are any.
    pub fn plan(&self) -> Result<Plan, SpecError> {
        let spec = ModelSpec::parse(&self.line)?;
        let classes = match spec.layers.last() {
            Some(LayerSpec::Fc { out }) => *out,
            Some(last) => {
                return Err(SpecError::at(
                    spec.layers.len(),
                    &last.to_string(),
                    "the line must end in `fc(N)`, one score per class",
                ));
            }
            None => return Err(SpecError::line("the model line is empty")),
        };
        if !self.class_names.is_empty() && self.class_names.len() != classes {
            return Err(SpecError::at(
                spec.layers.len(),
                &format!("fc({classes})"),
                format!(
                    "it is last, so the network has {classes} classes, but {} class names are given",
                    self.class_names.len()
                ),
            ));
        }
        spec.plan(self.input, classes)
    }

    /// The tensor called `name` (`3.weight`).
    pub fn tensor(&self, name: &str) -> Option<&ParamTensor<f32>> {
        self.tensors.iter().find(|t| t.name == name)
    }
}

/// Where a loaded file's network came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A model file: the file names its network.
    ModelFile,
    /// A file of the post's network from before model lines (or with its names, without
    /// metadata): the network is the post's family, from the file's configuration.
    PostFile,
    /// A state dict without our metadata (PyTorch's `save_file`): the network is the one the
    /// caller expected, and the tensors fit it.
    StateDict,
}

/// A file as [`load_model`] read it.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadedModel {
    /// The network and its weights; `weights.tensors` are in `plan`'s `state_dict` order.
    pub weights: ModelWeights,
    /// The line checked against the input.
    pub plan: Plan,
    /// Whether checksums vouch for the contents; see [`Integrity::note`].
    pub integrity: Integrity,
    /// What kind of file it was.
    pub origin: Origin,
}

impl LoadedModel {
    /// The network with these weights, ready to run on `engine`.
    pub fn sequential(&self, engine: ConvEngine) -> Result<Sequential<f32>, EngineError> {
        let mut net = Sequential::zeros(self.plan.clone(), engine);
        for t in &self.weights.tensors {
            net.set_param(&t.name, &t.data)?;
        }
        Ok(net)
    }
}

/// One image's (channels, height, width) of a plan.
fn plan_input(plan: &Plan) -> (usize, usize, usize) {
    match plan.input {
        Shape::Maps { c, h, w } => (c, h, w),
        Shape::Flat(n) => (n, 1, 1),
    }
}

/// `C×H×W`, the `input` metadata value.
fn input_text((c, h, w): (usize, usize, usize)) -> String {
    format!("{c}×{h}×{w}")
}

/// Reads `1×28×28` (or `1x28x28`); `None` unless it is three whole numbers.
fn parse_input(text: &str) -> Option<(usize, usize, usize)> {
    let parts: Vec<&str> = text.split(['×', 'x', 'X']).map(str::trim).collect();
    let [c, h, w] = parts[..] else { return None };
    Some((c.parse().ok()?, h.parse().ok()?, w.parse().ok()?))
}

/// The line of the post's family of networks with `cfg`'s sizes:
/// `conv(F1,K[,stride][,pad]), relu, conv(F2,K,…), [relu,] flatten, fc(HIDDEN), relu, fc(CLASSES)`.
/// For [`ModelConfig::default`] it is the named network `post`'s line, and `post-relu`'s with
/// [`ModelConfig::relu_after_conv2`].
pub fn post_family_spec(cfg: &ModelConfig) -> ModelSpec {
    let conv = |filters| LayerSpec::Conv { filters, k: cfg.kernel, stride: cfg.stride, pad: cfg.pad };
    let mut layers = vec![conv(cfg.conv1_filters), LayerSpec::Relu, conv(cfg.conv2_filters)];
    if cfg.relu_after_conv2 {
        layers.push(LayerSpec::Relu);
    }
    layers.extend([
        LayerSpec::Flatten,
        LayerSpec::Fc { out: cfg.hidden },
        LayerSpec::Relu,
        LayerSpec::Fc { out: cfg.classes },
    ]);
    ModelSpec { layers }
}

/// The post network's configuration, if `plan` is of its family (see [`post_family_spec`]:
/// two convolutions with the same kernel, stride and padding, a ReLU after the first and
/// optionally after the second, then fc, relu, fc).
pub fn post_family_config(plan: &Plan) -> Option<ModelConfig> {
    use LayerSpec::{Conv, Fc, Flatten, Relu};
    let (c1, c2, hidden, relu_after_conv2) = match plan.spec.layers[..] {
        [c1 @ Conv { .. }, Relu, c2 @ Conv { .. }, Flatten, Fc { out }, Relu, Fc { .. }] => (c1, c2, out, false),
        [c1 @ Conv { .. }, Relu, c2 @ Conv { .. }, Relu, Flatten, Fc { out }, Relu, Fc { .. }] => (c1, c2, out, true),
        _ => return None,
    };
    let (Conv { filters: f1, k, stride, pad }, Conv { filters: f2, k: k2, stride: s2, pad: p2 }) = (c1, c2) else {
        return None;
    };
    let Shape::Maps { c, h, w } = plan.input else { return None };
    ((k, stride, pad) == (k2, s2, p2)).then_some(ModelConfig {
        in_channels: c,
        in_height: h,
        in_width: w,
        conv1_filters: f1,
        conv2_filters: f2,
        kernel: k,
        stride,
        pad,
        hidden,
        classes: plan.classes,
        relu_after_conv2,
    })
}

/// Each parameter tensor of `plan`: its name, its layer's index and its shape, in order.
fn slots(plan: &Plan) -> Vec<(String, usize, Vec<usize>)> {
    plan.layers.iter().flat_map(|l| l.param_shapes().into_iter().map(|(n, s)| (n, l.index, s))).collect()
}

/// Encodes a network and its weights as the bytes of a model file.
///
/// Fails, naming the tensor or the layer, if the line does not fit the input, a tensor is
/// missing, extra, of the wrong shape or length, or holds NaN or infinity: no file is written
/// that [`load_model`] would refuse.
pub fn to_bytes_model(w: &ModelWeights) -> Result<Vec<u8>, WeightsError> {
    encode_model(w, UNSAVED)
}

/// Writes a model file atomically (see [`fileio::write_atomically`]): a crash or error leaves
/// the old file (if any) as it was.
pub fn save_model(path: &Path, w: &ModelWeights) -> Result<(), WeightsError> {
    let bytes = encode_model(w, &path.display().to_string())?;
    fileio::write_atomically(path, &bytes)?;
    Ok(())
}

fn encode_model(w: &ModelWeights, name: &str) -> Result<Vec<u8>, WeightsError> {
    let plan = checked_plan(w, name)?;
    let entries = model_entries(w, &plan, "", name)?;
    encode_file(&entries, model_info(w, &plan, name)?, name)
}

/// [`ModelWeights::plan`], its error naming the file.
pub(crate) fn checked_plan(w: &ModelWeights, name: &str) -> Result<Plan, WeightsError> {
    w.plan().map_err(|e| WeightsError::Metadata {
        name: name.to_owned(),
        detail: format!("the model line `{}` on {} images cannot be used: {e}", shorten(&w.line), input_text(w.input)),
    })
}

/// At most 200 characters of a line for a message: a damaged or hostile file's text must not
/// become a page of error.
fn shorten(line: &str) -> String {
    const MAX: usize = 200;
    if line.chars().count() <= MAX {
        line.to_owned()
    } else {
        format!("{}…", line.chars().take(MAX).collect::<String>())
    }
}

/// The tensors of `w` as `F32` entries named `{prefix}{tensor name}`, in `plan`'s order, after
/// checking them against `plan` (`plan` is [`checked_plan`]'s).
pub(crate) fn model_entries(
    w: &ModelWeights,
    plan: &Plan,
    prefix: &str,
    name: &str,
) -> Result<Vec<Entry>, WeightsError> {
    let slots = slots(plan);
    let missing: Vec<String> = slots.iter().filter(|(n, ..)| w.tensor(n).is_none()).map(|(n, ..)| n.clone()).collect();
    // A tensor of no layer, or a second tensor of the same name, is unexpected (named once).
    let mut seen = BTreeSet::new();
    let mut unexpected: Vec<String> = Vec::new();
    for t in &w.tensors {
        let known = slots.iter().any(|(n, ..)| *n == t.name);
        if (!known || !seen.insert(t.name.as_str())) && !unexpected.contains(&t.name) {
            unexpected.push(t.name.clone());
        }
    }
    if !missing.is_empty() || !unexpected.is_empty() {
        return Err(WeightsError::Names { name: name.to_owned(), missing, unexpected });
    }
    let mut entries = Vec::with_capacity(slots.len());
    for (tensor, _, shape) in slots {
        let Some(t) = w.tensor(&tensor) else { continue };
        if t.shape != shape {
            return Err(WeightsError::Shape { name: name.to_owned(), tensor, found: t.shape.clone(), expected: shape });
        }
        let len: usize = shape.iter().product();
        if t.data.len() != len {
            return Err(WeightsError::Layout {
                name: name.to_owned(),
                tensor,
                detail: format!("holds {} values, but its shape {shape:?} takes {len}", t.data.len()),
            });
        }
        check_finite(&t.data, &tensor, name)?;
        let data = t.data.iter().flat_map(|v| v.to_le_bytes()).collect();
        entries.push(Entry { name: format!("{prefix}{tensor}"), dtype: Dtype::F32, shape, data });
    }
    Ok(entries)
}

/// The metadata of a model file for `w` (`plan` is [`checked_plan`]'s), without checksums.
pub(crate) fn model_info(w: &ModelWeights, plan: &Plan, name: &str) -> Result<BTreeMap<String, String>, WeightsError> {
    let mut info = BTreeMap::from([
        ("format".to_owned(), MODEL_FORMAT.to_owned()),
        (MODEL_KEY.to_owned(), plan.spec.to_string()),
        (INPUT_KEY.to_owned(), input_text(plan_input(plan))),
    ]);
    if !w.class_names.is_empty() {
        let names = serde_json::to_string(&w.class_names).map_err(|e| WeightsError::Metadata {
            name: name.to_owned(),
            detail: format!("cannot encode the class names as JSON: {e}"),
        })?;
        info.insert(CLASSES_KEY.to_owned(), names);
    }
    if let Some(preset) = &w.meta.preset {
        info.insert("preset".to_owned(), preset.clone());
    }
    if let Some(seed) = w.meta.seed {
        info.insert("seed".to_owned(), seed.to_string());
    }
    if let Some(step) = w.meta.step {
        info.insert("step".to_owned(), step.to_string());
    }
    Ok(info)
}

/// Reads a model file, a post file or a PyTorch state dict; see the [module
/// documentation](self) for what each gives and what `expected` does, and
/// [`read_file`] for how the file is read.
pub fn load_model(path: &Path, expected: Option<&Plan>) -> Result<LoadedModel, WeightsError> {
    from_bytes_model(&read_file(path)?, &path.display().to_string(), expected)
}

/// [`load_model`] from the file's bytes; `name` (usually the path) starts every error message.
pub fn from_bytes_model(bytes: &[u8], name: &str, expected: Option<&Plan>) -> Result<LoadedModel, WeightsError> {
    Parsed::new(bytes, name)?.model(expected)
}

impl Parsed<'_> {
    /// The network and its weights, whichever of the three kinds of file this is; see
    /// [`load_model`].
    pub(crate) fn model(&self, expected: Option<&Plan>) -> Result<LoadedModel, WeightsError> {
        let bad = |detail: String| WeightsError::Metadata { name: self.name.clone(), detail };
        match self.metadata.as_ref().and_then(|m| m.get("format")).map(String::as_str) {
            Some(MODEL_FORMAT) => self.model_file(expected),
            Some(FORMAT) => self.post_file(expected),
            Some(other) if other.starts_with("cnn-stepper") => {
                Err(bad(format!("format {other:?} is not one this version reads ({MODEL_FORMAT:?} or {FORMAT:?})")))
            }
            found if self.integrity == Integrity::Verified => Err(bad(format!(
                "the file has cnn-stepper checksums but its \"format\" is {found:?}, not {MODEL_FORMAT:?}"
            ))),
            // PyTorch tools write e.g. `"format": "pt"`: such files are state dicts.
            _ if self.has_post_names() => self.post_file(expected),
            _ => self.state_dict(expected),
        }
    }

    /// The tensors (session state aside), sorted by name.
    fn tensor_names(&self) -> BTreeSet<&str> {
        self.st.names().into_iter().filter(|n| !n.starts_with(SESSION_PREFIX)).collect()
    }

    /// True if the tensors are exactly the post network's `conv1.weight` … `fc2.bias`.
    fn has_post_names(&self) -> bool {
        self.tensor_names() == PARAM_NAMES.iter().copied().collect::<BTreeSet<&str>>()
    }

    fn model_file(&self, expected: Option<&Plan>) -> Result<LoadedModel, WeightsError> {
        let name = self.name.as_str();
        let empty = BTreeMap::new();
        let map = self.metadata.as_ref().unwrap_or(&empty);
        if self.integrity == Integrity::Unchecked
            && let Some(key) = map.keys().find(|k| !MODEL_KEYS.contains(&k.as_str()))
        {
            return Err(WeightsError::Damaged {
                name: name.to_owned(),
                detail: format!("metadata key {key:?} is not one cnn-stepper writes (a damaged key name?)"),
            });
        }
        let bad = |detail: String| WeightsError::Metadata { name: name.to_owned(), detail };
        let get = |key: &str| map.get(key).ok_or_else(|| bad(format!("metadata has no {key:?} entry")));
        let line = get(MODEL_KEY)?;
        let input_value = get(INPUT_KEY)?;
        let input = parse_input(input_value).ok_or_else(|| {
            bad(format!("metadata {INPUT_KEY:?} = {input_value:?} is not channels×height×width, e.g. \"1×28×28\""))
        })?;
        let class_names: Vec<String> = match map.get(CLASSES_KEY) {
            None => Vec::new(),
            Some(v) => serde_json::from_str(v)
                .map_err(|e| bad(format!("metadata {CLASSES_KEY:?} is not a JSON list of class names: {e}")))?,
        };
        let number = |key: &str| -> Result<Option<u64>, WeightsError> {
            map.get(key)
                .map(|v| v.parse::<u64>().map_err(|_| bad(format!("metadata {key:?} = {v:?} is not a whole number"))))
                .transpose()
        };
        let meta = ModelMeta { preset: map.get("preset").cloned(), seed: number("seed")?, step: number("step")? };
        let weights = ModelWeights { line: line.clone(), input, class_names, tensors: Vec::new(), meta };
        let plan = weights.plan().map_err(|e| {
            let line = shorten(line);
            bad(format!("metadata {MODEL_KEY:?} `{line}` on {} images cannot be used: {e}", input_text(input)))
        })?;
        check_expected(&plan, expected, name)?;
        let tensors = self.model_tensors(&plan)?;
        Ok(LoadedModel {
            weights: ModelWeights { tensors, ..weights },
            plan,
            integrity: self.integrity,
            origin: Origin::ModelFile,
        })
    }

    fn post_file(&self, expected: Option<&Plan>) -> Result<LoadedModel, WeightsError> {
        let name = self.name.as_str();
        let ours = self.metadata.as_ref().and_then(|m| m.get("format")).is_some_and(|f| f == FORMAT);
        // Without metadata the configuration comes from the shapes, which cannot tell every
        // input size or stride apart: the expected network, if of the post's family, settles it.
        let hint = if ours { None } else { expected.and_then(post_family_config) };
        let loaded = match hint {
            Some(cfg) => match self.weights(Some(&cfg)) {
                // Shapes that are not the expected network's: the mismatch is reported below,
                // as two lines rather than as configuration fields.
                Err(e @ WeightsError::ConfigMismatch { .. }) => self.weights(None).map_err(|_| e)?,
                other => other?,
            },
            None => self.weights(None)?,
        };
        let cfg = loaded.meta.config;
        let spec = post_family_spec(&cfg);
        // Through the text, so that the line's own limits (kernel, filters, …) apply.
        let plan = ModelSpec::parse(&spec.to_string())
            .and_then(|s| s.plan((cfg.in_channels, cfg.in_height, cfg.in_width), cfg.classes))
            .map_err(|e| WeightsError::Metadata {
                name: name.to_owned(),
                detail: format!("the file's network `{spec}` cannot be used: {e}"),
            })?;
        check_expected(&plan, expected, name)?;
        let slots = slots(&plan);
        let tensors: Vec<ParamTensor<f32>> = slots
            .into_iter()
            .zip(loaded.params.slices())
            .map(|((tensor, layer, shape), data)| ParamTensor { name: tensor, layer, shape, data: data.to_vec() })
            .collect();
        if tensors.len() != PARAM_NAMES.len()
            || tensors
                .iter()
                .zip(Params::<f32>::shapes(&cfg))
                .any(|(t, s)| t.shape != s || t.data.len() != t.shape.iter().product::<usize>())
        {
            return Err(WeightsError::Infer {
                name: name.to_owned(),
                detail: format!("the tensors do not match the network `{spec}`"),
            });
        }
        let meta = ModelMeta { preset: loaded.meta.preset, seed: loaded.meta.seed, step: loaded.meta.step };
        Ok(LoadedModel {
            weights: ModelWeights {
                line: plan.spec.to_string(),
                input: plan_input(&plan),
                class_names: Vec::new(),
                tensors,
                meta,
            },
            plan,
            integrity: loaded.integrity,
            origin: Origin::PostFile,
        })
    }

    fn state_dict(&self, expected: Option<&Plan>) -> Result<LoadedModel, WeightsError> {
        let Some(plan) = expected else {
            return Err(WeightsError::NoModelLine { name: self.name.clone() });
        };
        let tensors = self.model_tensors(plan)?;
        let weights = ModelWeights::new(plan, tensors);
        Ok(LoadedModel { weights, plan: plan.clone(), integrity: self.integrity, origin: Origin::StateDict })
    }

    /// Every parameter of `plan` from the file, in order: the names must be exactly the plan's
    /// (besides `session.*`), each `F32` or `F64` of the plan's shape, finite.
    fn model_tensors(&self, plan: &Plan) -> Result<Vec<ParamTensor<f32>>, WeightsError> {
        let name = self.name.as_str();
        let slots = slots(plan);
        let present = self.tensor_names();
        let missing: Vec<String> =
            slots.iter().filter(|(n, ..)| !present.contains(n.as_str())).map(|(n, ..)| n.clone()).collect();
        let unexpected: Vec<String> =
            present.iter().filter(|p| !slots.iter().any(|(n, ..)| n == *p)).map(|p| (*p).to_owned()).collect();
        if !missing.is_empty() || !unexpected.is_empty() {
            return Err(WeightsError::Names { name: name.to_owned(), missing, unexpected });
        }
        let mut tensors = Vec::with_capacity(slots.len());
        for (tensor, layer, shape) in slots {
            let view =
                self.st.tensor(&tensor).map_err(|source| WeightsError::Corrupt { name: name.to_owned(), source })?;
            if !matches!(view.dtype(), Dtype::F32 | Dtype::F64) {
                return Err(WeightsError::Dtype { name: name.to_owned(), tensor, dtype: view.dtype().to_string() });
            }
            if view.shape() != shape.as_slice() {
                return Err(WeightsError::Shape {
                    name: name.to_owned(),
                    tensor,
                    found: view.shape().to_vec(),
                    expected: shape,
                });
            }
            let data = to_f32(&view);
            check_finite(&data, &tensor, name)?;
            tensors.push(ParamTensor { name: tensor, layer, shape, data });
        }
        Ok(tensors)
    }
}

/// Refuses a file's network that is not `expected`'s, naming both lines (and both inputs).
fn check_expected(file: &Plan, expected: Option<&Plan>, name: &str) -> Result<(), WeightsError> {
    let Some(expected) = expected else { return Ok(()) };
    let mut differences = Vec::new();
    if file.spec != expected.spec {
        differences.push(format!("the file holds `{}` but `{}` is expected", file.spec, expected.spec));
    }
    if file.input != expected.input {
        differences
            .push(format!("the file's network takes {} images but {} images are expected", file.input, expected.input));
    }
    if differences.is_empty() {
        Ok(())
    } else {
        Err(WeightsError::ModelMismatch { name: name.to_owned(), differences })
    }
}
