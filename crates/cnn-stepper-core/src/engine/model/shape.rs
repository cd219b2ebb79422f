//! A model line checked against the data: every layer's input and output shape, its name, its
//! parameters and its work per image.

use std::fmt;

use super::spec::{LayerSpec, ModelSpec, SpecError};

/// Most parameters one layer may hold (the post's fc1 has 2.5 M).
pub const MAX_LAYER_PARAMS: usize = 32 << 20;
/// Most values the activations of one image may take, summed over the layers (the post's take
/// 51 k): with their gradients, at the largest batch, this bounds a step's memory to a few GB.
pub const MAX_VALUES_PER_IMAGE: usize = 1 << 20;
/// Largest input side or channel count a plan accepts.
pub const MAX_INPUT_SIDE: usize = 4096;

/// The shape of one image's tensor between two layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shape {
    /// `C` maps of `H`×`W` (what a conv, a pool and an activation see before `flatten`).
    Maps {
        /// Channels.
        c: usize,
        /// Height.
        h: usize,
        /// Width.
        w: usize,
    },
    /// One vector (after `flatten`).
    Flat(usize),
}

impl Shape {
    /// Values in one image's tensor.
    pub fn len(&self) -> usize {
        match *self {
            Shape::Maps { c, h, w } => c * h * w,
            Shape::Flat(n) => n,
        }
    }

    /// True when the tensor holds no value (never for a planned shape).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The dimensions, PyTorch style without the batch: `[C, H, W]` or `[N]`.
    pub fn dims(&self) -> Vec<usize> {
        match *self {
            Shape::Maps { c, h, w } => vec![c, h, w],
            Shape::Flat(n) => vec![n],
        }
    }
}

impl fmt::Display for Shape {
    /// `16×28×28` or `100`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Shape::Maps { c, h, w } => write!(f, "{c}×{h}×{w}"),
            Shape::Flat(n) => write!(f, "{n}"),
        }
    }
}

/// One layer of a [`Plan`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedLayer {
    /// Position in the line from 0: the PyTorch `nn.Sequential` index, so its tensors are
    /// `<index>.weight` and `<index>.bias`.
    pub index: usize,
    /// The layer and its numbers.
    pub spec: LayerSpec,
    /// The name a student would use: conv1, relu1, pool1, conv2, …, flatten, fc1, relu3, fc2
    /// (numbered per kind: convs, activations of any kind, pools of either kind, fcs).
    pub name: String,
    /// One image's input.
    pub input: Shape,
    /// One image's output.
    pub output: Shape,
    /// Weights plus biases.
    pub params: usize,
    /// Arithmetic per image: multiply-adds for conv and fc, window reads for pools, one per
    /// value for activations, 0 for flatten.
    pub work_per_image: usize,
}

impl PlannedLayer {
    /// The PyTorch `state_dict` names and shapes of this layer's tensors (weight, then bias),
    /// empty for layers without parameters.
    pub fn param_shapes(&self) -> Vec<(String, Vec<usize>)> {
        match (self.spec, self.input) {
            (LayerSpec::Conv { filters, k, .. }, Shape::Maps { c, .. }) => vec![
                (format!("{}.weight", self.index), vec![filters, c, k, k]),
                (format!("{}.bias", self.index), vec![filters]),
            ],
            (LayerSpec::Fc { out }, input) => vec![
                (format!("{}.weight", self.index), vec![out, input.len()]),
                (format!("{}.bias", self.index), vec![out]),
            ],
            _ => Vec::new(),
        }
    }

    /// Inputs each weight of this layer multiplies per output value (C·K·K for conv, the input
    /// length for fc; 0 without weights): the fan-in of He initialisation.
    pub fn fan_in(&self) -> usize {
        match (self.spec, self.input) {
            (LayerSpec::Conv { k, .. }, Shape::Maps { c, .. }) => c * k * k,
            (LayerSpec::Fc { .. }, input) => input.len(),
            _ => 0,
        }
    }
}

/// A model line that fits the data: the layers with their shapes, ready to build a network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The line.
    pub spec: ModelSpec,
    /// One image of the data.
    pub input: Shape,
    /// Classes of the data (the last fc's outputs).
    pub classes: usize,
    /// The layers, first to last.
    pub layers: Vec<PlannedLayer>,
}

impl Plan {
    /// Weights and biases of every layer.
    pub fn total_params(&self) -> usize {
        self.layers.iter().map(|l| l.params).sum()
    }

    /// Arithmetic per image over all layers (see [`PlannedLayer::work_per_image`]).
    pub fn work_per_image(&self) -> usize {
        self.layers.iter().map(|l| l.work_per_image).sum()
    }

    /// Values of one image's activations, summed over the layers (flatten's output is its
    /// input and is not counted twice).
    pub fn values_per_image(&self) -> usize {
        self.layers.iter().filter(|l| l.spec != LayerSpec::Flatten).map(|l| l.output.len()).sum()
    }

    /// Bytes a training step holds with floats of `float_bytes` (4 for f32) at batch `batch`:
    /// the input, every activation and its gradient, and each parameter with its gradient and
    /// its change (momentum buffer); Adam's two running means add `2·params` more (not counted).
    pub fn bytes_per_step(&self, batch: usize, float_bytes: usize) -> usize {
        let values = batch * (self.input.len() + 2 * self.values_per_image());
        (values + 3 * self.total_params()) * float_bytes
    }

    /// Every parameter tensor, `<index>.weight` / `<index>.bias`, in `state_dict` order.
    pub fn param_shapes(&self) -> Vec<(String, Vec<usize>)> {
        self.layers.iter().flat_map(PlannedLayer::param_shapes).collect()
    }

    /// The layer a student calls `name` (`conv2`, `pool1`, …).
    pub fn layer_named(&self, name: &str) -> Option<&PlannedLayer> {
        self.layers.iter().find(|l| l.name == name)
    }
}

impl ModelSpec {
    /// Checks the line against the data (`input` = (channels, height, width) of one image,
    /// `classes` = how many) and works out every layer's shape, name and size. Output sizes
    /// floor as PyTorch's do: `(H + 2·pad − K) / stride + 1`.
    pub fn plan(&self, input: (usize, usize, usize), classes: usize) -> Result<Plan, SpecError> {
        let (c, h, w) = input;
        if c == 0 || h == 0 || w == 0 || c > MAX_INPUT_SIDE || h > MAX_INPUT_SIDE || w > MAX_INPUT_SIDE {
            return Err(SpecError::line(format!(
                "the data's images are {c}×{h}×{w}: each of channels, height and width must be from 1 to {MAX_INPUT_SIDE}"
            )));
        }
        if !(2..=super::spec::MAX_FC).contains(&classes) {
            return Err(SpecError::line(format!(
                "the data has {classes} classes: a network needs from 2 to {}",
                super::spec::MAX_FC
            )));
        }
        let Some(last) = self.layers.last() else {
            return Err(SpecError::line(format!(
                "the model line is empty: write layers separated by commas, ending in `fc({classes})`"
            )));
        };
        if self.layers.len() > super::spec::MAX_LAYERS {
            return Err(SpecError::line(format!(
                "{} layers: at most {} are allowed",
                self.layers.len(),
                super::spec::MAX_LAYERS
            )));
        }
        let mut shape = Shape::Maps { c, h, w };
        let mut counts = Counts::default();
        let mut flatten_at: Option<usize> = None;
        let mut layers = Vec::with_capacity(self.layers.len());
        let mut values = 0usize;
        for (index, &spec) in self.layers.iter().enumerate() {
            let pos = index + 1;
            let text = spec.to_string();
            let err = |reason: String| SpecError::at(pos, &text, reason);
            let after_flatten = |what: &str| {
                let at = flatten_at.map_or(String::new(), |f| format!(" (layer {})", f + 1));
                err(format!("{what} needs maps, but it comes after `flatten`{at}: move it before `flatten`"))
            };
            let (output, params, work) = match (spec, shape) {
                (LayerSpec::Conv { .. }, Shape::Flat(_)) => return Err(after_flatten("a convolution")),
                (LayerSpec::Conv { filters, k, stride, pad }, Shape::Maps { c, h, w }) => {
                    let (ph, pw) = (h + 2 * pad, w + 2 * pad);
                    if ph < k || pw < k {
                        let padded = if pad > 0 { format!(" ({ph}×{pw} with padding {pad})") } else { String::new() };
                        return Err(err(format!(
                            "its input is {h}×{w}{padded}, smaller than the {k}×{k} kernel: use a smaller kernel, more padding, or fewer pools before it"
                        )));
                    }
                    let (oh, ow) = ((ph - k) / stride + 1, (pw - k) / stride + 1);
                    let out = Shape::Maps { c: filters, h: oh, w: ow };
                    (out, filters * (c * k * k + 1), out.len() * c * k * k)
                }
                (LayerSpec::MaxPool { .. } | LayerSpec::AvgPool { .. }, Shape::Flat(_)) => {
                    return Err(after_flatten("a pool"));
                }
                (LayerSpec::MaxPool { k, stride } | LayerSpec::AvgPool { k, stride }, Shape::Maps { c, h, w }) => {
                    if h < k || w < k {
                        return Err(err(format!(
                            "its input is {h}×{w}, smaller than the window ({k}×{k}): use a smaller window or remove a pool"
                        )));
                    }
                    let out = Shape::Maps { c, h: (h - k) / stride + 1, w: (w - k) / stride + 1 };
                    (out, 0, out.len() * k * k)
                }
                (LayerSpec::Relu | LayerSpec::Tanh | LayerSpec::Sigmoid, s) => (s, 0, s.len()),
                (LayerSpec::Flatten, Shape::Flat(_)) => {
                    return Err(err("the input is already flat: one `flatten` is enough".into()));
                }
                (LayerSpec::Flatten, s) => {
                    flatten_at = Some(index);
                    (Shape::Flat(s.len()), 0, 0)
                }
                (LayerSpec::Fc { .. }, Shape::Maps { .. }) => {
                    return Err(err("add `flatten` before the first fc".into()));
                }
                (LayerSpec::Fc { out }, Shape::Flat(n)) => (Shape::Flat(out), out * (n + 1), out * n),
            };
            if params > MAX_LAYER_PARAMS {
                return Err(err(format!(
                    "{params} parameters: one layer may have at most {MAX_LAYER_PARAMS} ({} M); pool or shrink before it",
                    MAX_LAYER_PARAMS >> 20
                )));
            }
            if spec != LayerSpec::Flatten {
                values += output.len();
            }
            if values > MAX_VALUES_PER_IMAGE {
                return Err(err(format!(
                    "the activations up to here take {values} values per image: at most {MAX_VALUES_PER_IMAGE} are allowed"
                )));
            }
            layers.push(PlannedLayer {
                index,
                spec,
                name: counts.name(spec),
                input: shape,
                output,
                params,
                work_per_image: work,
            });
            shape = output;
        }
        let pos = self.layers.len();
        match *last {
            LayerSpec::Fc { out } if out == classes => {}
            LayerSpec::Fc { out } => {
                return Err(SpecError::at(
                    pos,
                    &last.to_string(),
                    format!("it is last, but the data has {classes} classes, not {out}: make it `fc({classes})`"),
                ));
            }
            other => {
                return Err(SpecError::at(
                    pos,
                    &other.to_string(),
                    format!("the line must end in `fc({classes})`, one score per class of the data"),
                ));
            }
        }
        Ok(Plan { spec: self.clone(), input: Shape::Maps { c, h, w }, classes, layers })
    }
}

/// Numbers layers per kind, as a student would name them.
#[derive(Default)]
struct Counts {
    conv: usize,
    act: usize,
    pool: usize,
    fc: usize,
}

impl Counts {
    fn name(&mut self, spec: LayerSpec) -> String {
        let (counter, prefix) = match spec {
            LayerSpec::Conv { .. } => (&mut self.conv, "conv"),
            LayerSpec::MaxPool { .. } | LayerSpec::AvgPool { .. } => (&mut self.pool, "pool"),
            LayerSpec::Relu => (&mut self.act, "relu"),
            LayerSpec::Tanh => (&mut self.act, "tanh"),
            LayerSpec::Sigmoid => (&mut self.act, "sigmoid"),
            LayerSpec::Flatten => return "flatten".into(),
            LayerSpec::Fc { .. } => (&mut self.fc, "fc"),
        };
        *counter += 1;
        format!("{prefix}{counter}")
    }
}
