//! Weights of any network in a weights or session file: tensors named as PyTorch's
//! `state_dict` names an `nn.Sequential`'s (`<index>.weight`), and metadata naming the network,
//! its input and its classes. Files of the post's network from before (named `conv1.weight`,
//! with a `"config"` entry) are read as the same network written as a line.

use std::collections::{BTreeMap, BTreeSet};

use safetensors::tensor::Dtype;

use super::model::{ParamTensor, Plan, Sequential, Shape, resolve};
use super::weights::{self, Entry, FORMAT, Integrity, Parsed, SESSION_PREFIX, WeightsError};
use super::{ConvEngine, ModelConfig};

/// Metadata key of the network (a name such as `lenet5`, or a line).
pub const MODEL_KEY: &str = "model";
/// Metadata key of one image's shape, `C×H×W` (e.g. `1×28×28`).
pub const INPUT_KEY: &str = "input";
/// Metadata key of the class names, a JSON list of strings.
pub const CLASSES_KEY: &str = "class_names";

/// What a file says about its training besides the network.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelMeta {
    /// The preset the run started from; `None` for files from elsewhere.
    pub preset: Option<String>,
    /// The seed the run started from; `None` for files from elsewhere.
    pub seed: Option<u64>,
    /// Training steps taken when the file was saved; `None` for files from elsewhere.
    pub step: Option<u64>,
}

/// A network and its weights, as a model file holds them.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelWeights {
    /// The model line.
    pub line: String,
    /// One image's (channels, height, width).
    pub input: (usize, usize, usize),
    /// The class names the file records (empty if none).
    pub class_names: Vec<String>,
    /// Every parameter, in `state_dict` order.
    pub tensors: Vec<ParamTensor<f32>>,
    /// Preset, seed and step, where recorded.
    pub meta: ModelMeta,
}

/// A network's weights as read from a file.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadedModel {
    /// The network and its weights.
    pub weights: ModelWeights,
    /// The line checked against the input.
    pub plan: Plan,
    /// Whether checksums vouch for the contents.
    pub integrity: Integrity,
}

/// The line of `w` checked against its input.
pub(crate) fn checked_plan(w: &ModelWeights, name: &str) -> Result<Plan, WeightsError> {
    let classes = w.class_names.len().max(2);
    resolve(&w.line, w.input, classes).map_err(|e| WeightsError::Metadata {
        name: name.to_owned(),
        detail: format!("the model line `{}` cannot be used: {}", w.line, e.message()),
    })
}

/// The tensors as `F32` entries named `{prefix}{name}`.
pub(crate) fn model_entries(w: &ModelWeights, _plan: &Plan, prefix: &str, name: &str) -> Result<Vec<Entry>, WeightsError> {
    w.tensors
        .iter()
        .map(|t| {
            if t.shape.iter().product::<usize>() != t.data.len() {
                return Err(WeightsError::Shape {
                    name: name.to_owned(),
                    tensor: t.name.clone(),
                    found: vec![t.data.len()],
                    expected: t.shape.clone(),
                });
            }
            Ok(Entry {
                name: format!("{prefix}{}", t.name),
                dtype: Dtype::F32,
                shape: t.shape.clone(),
                data: t.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            })
        })
        .collect()
}

/// The metadata naming the network, its input and its classes.
pub(crate) fn model_info(w: &ModelWeights, plan: &Plan, _name: &str) -> Result<BTreeMap<String, String>, WeightsError> {
    let mut info = BTreeMap::from([
        ("format".to_owned(), FORMAT.to_owned()),
        (MODEL_KEY.to_owned(), plan.spec.to_string()),
        (INPUT_KEY.to_owned(), shape_text(plan.input)),
        (CLASSES_KEY.to_owned(), serde_json::to_string(&w.class_names).unwrap_or_else(|_| "[]".into())),
    ]);
    if let Some(p) = &w.meta.preset {
        info.insert("preset".into(), p.clone());
    }
    if let Some(v) = w.meta.seed {
        info.insert("seed".into(), v.to_string());
    }
    if let Some(v) = w.meta.step {
        info.insert("step".into(), v.to_string());
    }
    Ok(info)
}

fn shape_text(input: Shape) -> String {
    let (c, h, w) = chw(input);
    format!("{c}×{h}×{w}")
}

fn chw(input: Shape) -> (usize, usize, usize) {
    match input {
        Shape::Maps { c, h, w } => (c, h, w),
        Shape::Flat(n) => (n, 1, 1),
    }
}

fn parse_shape(text: &str) -> Option<(usize, usize, usize)> {
    let parts: Vec<usize> = text.split(['×', 'x']).map(|p| p.trim().parse().ok()).collect::<Option<_>>()?;
    match parts[..] {
        [c, h, w] if c > 0 && h > 0 && w > 0 => Some((c, h, w)),
        _ => None,
    }
}

/// The line of the post-shaped network an old `"config"` describes, and its name when it is
/// exactly `post` or `post-relu`.
fn config_model(cfg: &ModelConfig) -> String {
    let standard = ModelConfig { relu_after_conv2: cfg.relu_after_conv2, classes: cfg.classes, ..Default::default() };
    if *cfg == standard {
        return if cfg.relu_after_conv2 { "post-relu" } else { "post" }.to_owned();
    }
    let conv = |f: usize| {
        let mut s = format!("conv({f},{}", cfg.kernel);
        if cfg.stride != 1 {
            s += &format!(",stride={}", cfg.stride);
        }
        if cfg.pad != 0 {
            s += &format!(",pad={}", cfg.pad);
        }
        s + ")"
    };
    let relu2 = if cfg.relu_after_conv2 { ", relu" } else { "" };
    format!(
        "{}, relu, {}{relu2}, flatten, fc({}), relu, fc({})",
        conv(cfg.conv1_filters),
        conv(cfg.conv2_filters),
        cfg.hidden,
        cfg.classes
    )
}

impl Parsed<'_> {
    /// The network and its weights. A file that names its network is read as that one
    /// (whatever `expected` says: a caller that needs them to agree compares); a file of the post's network from before names
    /// it by its `"config"`; a file that names none (a PyTorch state dict) is read as
    /// `expected`, which it then needs.
    pub(crate) fn model(&self, expected: Option<&Plan>) -> Result<LoadedModel, WeightsError> {
        let name = self.name.as_str();
        let meta_err = |detail: String| WeightsError::Metadata { name: name.to_owned(), detail };
        let map = self.metadata.clone().unwrap_or_default();
        let file_meta = ModelMeta {
            preset: map.get("preset").cloned(),
            seed: map.get("seed").and_then(|s| s.parse().ok()),
            step: map.get("step").and_then(|s| s.parse().ok()),
        };
        let class_names: Vec<String> = match map.get(CLASSES_KEY) {
            Some(json) => serde_json::from_str(json)
                .map_err(|e| meta_err(format!("\"{CLASSES_KEY}\" is not a list of names: {e}")))?,
            None => Vec::new(),
        };
        if let Some(model) = map.get(MODEL_KEY) {
            let text = map.get(INPUT_KEY).ok_or_else(|| meta_err(format!("\"{MODEL_KEY}\" without \"{INPUT_KEY}\"")))?;
            let input = parse_shape(text)
                .ok_or_else(|| meta_err(format!("\"{INPUT_KEY}\" is {text:?}, not channels×height×width")))?;
            let classes = if class_names.is_empty() { expected.map_or(10, |p| p.classes) } else { class_names.len() };
            let plan = resolve(model, input, classes)
                .map_err(|e| meta_err(format!("the network {model:?} it records: {}", e.message())))?;
            let tensors = self.tensors_of(&plan)?;
            let weights = ModelWeights { line: model.clone(), input, class_names, tensors, meta: file_meta };
            return Ok(LoadedModel { weights, plan, integrity: self.integrity });
        }
        if map.contains_key("config") || expected.is_none() {
            // A file of the post's network (ours from before, or a state dict of its shape).
            let loaded = self.weights(None)?;
            let cfg = loaded.meta.config;
            let model = config_model(&cfg);
            let model = model.as_str();
            let input = (cfg.in_channels, cfg.in_height, cfg.in_width);
            let plan = resolve(model, input, cfg.classes).map_err(|e| meta_err(e.message()))?;
            let template = Sequential::<f32>::zeros(plan, ConvEngine::Fast);
            let tensors = template
                .params()
                .iter()
                .zip(loaded.params.slices())
                .map(|(t, data)| ParamTensor { data: data.to_vec(), ..t.clone() })
                .collect();
            let meta = ModelMeta { preset: loaded.meta.preset, seed: loaded.meta.seed, step: loaded.meta.step };
            let plan = template.plan().clone();
            let weights = ModelWeights { line: plan.spec.to_string(), input, class_names, tensors, meta };
            return Ok(LoadedModel { weights, plan, integrity: loaded.integrity });
        }
        let plan = expected.ok_or_else(|| meta_err("the file does not say which network it holds".into()))?;
        let tensors = self.tensors_of(plan)?;
        let weights =
            ModelWeights { line: plan.spec.to_string(), input: chw(plan.input), class_names, tensors, meta: file_meta };
        Ok(LoadedModel { weights, plan: plan.clone(), integrity: self.integrity })
    }

    /// Every parameter of `plan`, read from the tensors of the same name; missing, extra and
    /// misshapen tensors are named.
    fn tensors_of(&self, plan: &Plan) -> Result<Vec<ParamTensor<f32>>, WeightsError> {
        let name = self.name.as_str();
        let template = Sequential::<f32>::zeros(plan.clone(), ConvEngine::Fast);
        let present: BTreeSet<&str> =
            self.st.names().into_iter().filter(|n| !n.starts_with(SESSION_PREFIX)).collect();
        let wanted: Vec<&str> = template.params().iter().map(|t| t.name.as_str()).collect();
        let missing: Vec<String> = wanted.iter().filter(|n| !present.contains(**n)).map(|n| (*n).to_owned()).collect();
        let unexpected: Vec<String> =
            present.iter().filter(|n| !wanted.contains(n)).map(|n| (*n).to_owned()).collect();
        if !missing.is_empty() || !unexpected.is_empty() {
            return Err(WeightsError::Names { name: name.to_owned(), missing, unexpected });
        }
        let mut out = Vec::with_capacity(wanted.len());
        for t in template.params() {
            let view =
                self.st.tensor(&t.name).map_err(|source| WeightsError::Corrupt { name: name.to_owned(), source })?;
            if !matches!(view.dtype(), Dtype::F32 | Dtype::F64) {
                return Err(WeightsError::Dtype {
                    name: name.to_owned(),
                    tensor: t.name.clone(),
                    dtype: view.dtype().to_string(),
                });
            }
            if view.shape() != t.shape.as_slice() {
                return Err(WeightsError::Shape {
                    name: name.to_owned(),
                    tensor: t.name.clone(),
                    found: view.shape().to_vec(),
                    expected: t.shape.clone(),
                });
            }
            let data = weights::to_f32(&view);
            weights::check_finite(&data, &t.name, name)?;
            out.push(ParamTensor { data, ..t.clone() });
        }
        Ok(out)
    }
}
