//! The pixel inspector: one feature-map pixel's arithmetic redone from a [`Snapshot`], with no
//! round trip to the worker.
//!
//! - A pixel `(f, y, x)` of a convolution (or of the activation right after one) lists the
//!   input patch the kernel sees (zeros in the padding, flagged), the kernel, their element-wise
//!   products, the per-input-channel partial sums (named red, green and blue when the
//!   convolution reads a colour image), the bias and the total, which is the value in the
//!   engine's map up to float rounding; then the activation, if one follows. Once the
//!   backward pass has reached the pixel it adds the gradient arriving there and what that
//!   gradient contributes to the kernel's gradient (`grad × patch`) and to the patch's gradient
//!   (`grad × kernel`).
//! - A pixel of a pool lists its window: which input won (max) or their mean (average), and
//!   where the gradient goes back to.
//! - A pixel of any other activation: its input, the function, its output and the gradient
//!   through it.

use crate::engine::model::{LayerSpec, PlannedLayer, Shape};

use super::protocol::{FilterView, ModelView, SampleView, Snapshot};

/// A pixel of a feature map of the selected digit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PixelRef {
    /// The layer whose output map holds it (its position in the line).
    pub layer: usize,
    /// The map (output channel).
    pub channel: usize,
    /// Row in the map.
    pub y: usize,
    /// Column in the map.
    pub x: usize,
}

/// Why a pixel cannot be inspected.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum InspectError {
    /// The forward phase that computes the map has not run in this step yet.
    #[error("{0} has not been computed in this step yet: step forward to it first")]
    NotComputed(String),
    /// A layer whose output is not a stack of maps (flatten, fc) or that does not exist.
    #[error("layer {0} has no feature maps to inspect")]
    NotMaps(usize),
    /// A channel, row or column outside the map.
    #[error("{what} {value} is outside the map (0 to {})", limit.saturating_sub(1))]
    OutOfRange {
        /// "channel", "row" or "column".
        what: &'static str,
        /// The value asked for.
        value: usize,
        /// How many there are.
        limit: usize,
    },
    /// A snapshot whose tensors do not match its network (a bug, not a user error).
    #[error("the snapshot's {0} does not have the size its network implies")]
    Inconsistent(String),
}

/// One pixel's arithmetic, by the kind of layer that computed it.
#[derive(Clone, Debug, PartialEq)]
pub enum Inspection {
    /// A convolution's weighted sum (and the activation after it, if any).
    Conv(PixelInspection),
    /// A pool's window.
    Pool(PoolPixel),
    /// An activation whose input is not a convolution's output.
    Activation(ActivationPixel),
}

impl Inspection {
    /// The pixel.
    pub fn at(&self) -> PixelRef {
        match self {
            Inspection::Conv(c) => c.at,
            Inspection::Pool(p) => p.at,
            Inspection::Activation(a) => a.at,
        }
    }
}

/// An activation function applied to one value, with the gradient through it.
#[derive(Clone, Debug, PartialEq)]
pub struct ActivationStep {
    /// The layer's student name (`relu1`).
    pub name: String,
    /// `relu`, `tanh` or `sigmoid`.
    pub function: &'static str,
    /// Its input.
    pub input: f32,
    /// Its output, computed here.
    pub output: f32,
    /// ∂L/∂output at the pixel, once the backward pass has reached it.
    pub d_output: Option<f32>,
    /// ∂L/∂input = ∂L/∂output · f′(input), once known.
    pub d_input: Option<f32>,
}

/// One convolution pixel's arithmetic. Patch, kernel and products are `C × K × K` row-major,
/// with `C` the input channels of the convolution.
#[derive(Clone, Debug, PartialEq)]
pub struct PixelInspection {
    /// The pixel.
    pub at: PixelRef,
    /// The convolution's student name (`conv2`).
    pub conv_name: String,
    /// The tensor the patch is cut from: `input` or the layer before (`relu1`, `pool1`).
    pub input_name: String,
    /// Input channels `C`.
    pub channels: usize,
    /// Kernel size `K`.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Zero padding.
    pub pad: usize,
    /// Input row and column of the patch's top-left tap: `y·stride − pad`, `x·stride − pad`
    /// (negative inside the padding).
    pub origin: (isize, isize),
    /// The input values the kernel sees, 0 at padding positions.
    pub patch: Vec<f32>,
    /// `K × K`: true where the tap falls in the zero padding (the same for every channel).
    pub in_padding: Vec<bool>,
    /// The kernel of filter `at.channel`, as the step's forward pass used it.
    pub weights: Vec<f32>,
    /// `patch ⊙ weights`.
    pub products: Vec<f32>,
    /// `C`: the sum of the products of each input channel (the subtotals: with the bias they
    /// add up to the total).
    pub channel_sums: Vec<f32>,
    /// True when the input channels are a colour image's red, green and blue (see
    /// [`reads_image_channels`]): [`PixelInspection::channel_name`] then names them.
    pub colour_channels: bool,
    /// The filter's bias.
    pub bias: f32,
    /// `bias + Σ channel_sums` (summed in f64): the pre-activation value.
    pub total: f32,
    /// The value the engine put in the convolution's map, for comparison (equal up to float
    /// rounding).
    pub map_value: f32,
    /// True when the engine computed the map through Fourier transforms, whose rounding is
    /// relative to the whole map rather than to this one sum.
    pub by_fourier: bool,
    /// The activation right after the convolution, if there is one.
    pub activation: Option<ActivationStep>,
    /// Once the backward pass has reached the convolution's output: its gradient here.
    pub gradient: Option<PixelGradient>,
}

impl PixelInspection {
    /// Index of tap `(c, di, dj)` in `patch`, `weights`, `products` and the gradients.
    pub fn tap(&self, c: usize, di: usize, dj: usize) -> usize {
        (c * self.kernel + di) * self.kernel + dj
    }

    /// Input channel `c`'s name: `red`, `green` or `blue` for a colour image's, else
    /// `channel c`.
    pub fn channel_name(&self, c: usize) -> String {
        match COLOUR_CHANNELS.get(c).filter(|_| self.colour_channels) {
            Some(name) => (*name).to_string(),
            None => format!("channel {c}"),
        }
    }

    /// Every input channel's name (see [`PixelInspection::channel_name`]).
    pub fn channel_names(&self) -> Vec<String> {
        (0..self.channels).map(|c| self.channel_name(c)).collect()
    }
}

/// The names of a colour image's channels, in the order the data stores them.
pub const COLOUR_CHANNELS: [&str; 3] = ["red", "green", "blue"];

/// True when layer `layer`'s input channels are still the colour image's red, green and blue:
/// the data has three channels and every layer before it keeps channels apart (pools and
/// activations), so no convolution has mixed them yet. The first convolution of a colour
/// network reads them; its filters are small RGB pictures.
pub fn reads_image_channels(model: &ModelView, layer: usize) -> bool {
    let colour = matches!(model.plan.input, Shape::Maps { c: 3, .. });
    let before = model.plan.layers.get(..layer).unwrap_or(&[]);
    colour && layer < model.plan.layers.len() && before.iter().all(|l| l.spec.is_pool() || l.spec.is_activation())
}

/// The names of the input channels of layer `layer` (see [`PixelInspection::channel_name`]).
pub fn input_channel_names(model: &ModelView, layer: usize, channels: usize) -> Vec<String> {
    if channels == COLOUR_CHANNELS.len() && reads_image_channels(model, layer) {
        COLOUR_CHANNELS.iter().map(|n| (*n).to_string()).collect()
    } else {
        (0..channels).map(|c| format!("channel {c}")).collect()
    }
}

/// One pool pixel: its window of the input map.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolPixel {
    /// The pixel.
    pub at: PixelRef,
    /// The pool's student name (`pool1`).
    pub name: String,
    /// The tensor the window is cut from (`relu1`).
    pub input_name: String,
    /// True for a max pool, false for an average pool.
    pub max: bool,
    /// Window side K.
    pub window: usize,
    /// Stride.
    pub stride: usize,
    /// Input row and column of the window's top-left value.
    pub origin: (usize, usize),
    /// `K × K` input values of channel `at.channel`.
    pub values: Vec<f32>,
    /// For a max pool: the index in `values` of the input that won (the engine's choice).
    pub winner: Option<usize>,
    /// The value computed here: the maximum or the mean.
    pub result: f32,
    /// The value the engine put in the map.
    pub map_value: f32,
    /// ∂L/∂output at the pixel, once the backward pass has reached it.
    pub d_output: Option<f32>,
    /// `K × K`: where that gradient goes back to (all of it to the winner, or an equal share
    /// to each input), once known.
    pub d_input: Option<Vec<f32>>,
}

/// An activation pixel (when the layer before it is not a convolution).
#[derive(Clone, Debug, PartialEq)]
pub struct ActivationPixel {
    /// The pixel.
    pub at: PixelRef,
    /// The tensor it reads (`pool1`).
    pub input_name: String,
    /// The function and its gradient.
    pub step: ActivationStep,
    /// The value the engine put in the map.
    pub map_value: f32,
}

/// The backward side of one pixel.
#[derive(Clone, Debug, PartialEq)]
pub struct PixelGradient {
    /// ∂L/∂conv at the pixel: the gradient arriving at the pre-activation value.
    pub d_conv: f32,
    /// `C × K × K`: this pixel's contribution to the kernel's gradient, `d_conv × patch`
    /// (summed over every pixel and image it is the filter's gradient).
    pub dw: Vec<f32>,
    /// This pixel's contribution to the bias gradient: `d_conv`.
    pub db: f32,
    /// `C × K × K`: this pixel's contribution to the patch's gradient, `d_conv × weights`
    /// (0 in the padding, which is not a value anything depends on). For the first layer it is
    /// the gradient with respect to the digit's pixels, which training does not need.
    pub dx: Vec<f32>,
}

impl Snapshot {
    /// The arithmetic of pixel `at` of the selected digit; see [`inspect`].
    pub fn inspect_pixel(&self, at: PixelRef) -> Result<Inspection, InspectError> {
        let mut r = inspect(&self.model, &self.sample, &self.filters, at)?;
        if let Inspection::Conv(c) = &mut r
            && let Some(layer) = self.model.layer(conv_layer_of(&self.model, at.layer).unwrap_or(usize::MAX))
            && let LayerSpec::Conv { filters, k, stride, pad } = layer.spec
        {
            let shape = crate::engine::model::layers::conv::shape(1, layer.input, filters, k, stride, pad);
            c.by_fourier =
                self.settings.engine == crate::engine::ConvEngine::Fast && crate::engine::fftconv::suits(&shape);
        }
        Ok(r)
    }
}

/// The convolution whose arithmetic a pixel of layer `layer` shows: the layer itself, or the
/// conv right before an activation.
pub fn conv_layer_of(model: &ModelView, layer: usize) -> Option<usize> {
    let l = model.layer(layer)?;
    match l.spec {
        LayerSpec::Conv { .. } => Some(layer),
        _ if l.spec.is_activation() && layer > 0 => {
            matches!(model.layer(layer - 1)?.spec, LayerSpec::Conv { .. }).then(|| layer - 1)
        }
        _ => None,
    }
}

fn maps(shape: Shape) -> Option<(usize, usize, usize)> {
    match shape {
        Shape::Maps { c, h, w } => Some((c, h, w)),
        Shape::Flat(_) => None,
    }
}

fn function(spec: LayerSpec) -> Option<&'static str> {
    match spec {
        LayerSpec::Relu => Some("relu"),
        LayerSpec::Tanh => Some("tanh"),
        LayerSpec::Sigmoid => Some("sigmoid"),
        _ => None,
    }
}

/// `f(x)` and `f′(x)` of an activation.
fn apply(function: &str, x: f32) -> (f32, f32) {
    match function {
        "tanh" => {
            let y = x.tanh();
            (y, 1.0 - y * y)
        }
        "sigmoid" => {
            let y = 1.0 / (1.0 + (-x).exp());
            (y, y * (1.0 - y))
        }
        _ => (x.max(0.0), if x > 0.0 { 1.0 } else { 0.0 }),
    }
}

/// The name of layer `i`'s input: `input` for the first layer.
fn input_name(model: &ModelView, i: usize) -> String {
    if i == 0 { "input".into() } else { model.layer(i - 1).map_or_else(|| "?".into(), |l| l.name.clone()) }
}

/// The activation step of activation layer `layer` at output index `pixel`, from its input.
fn activation_step(sample: &SampleView, l: &PlannedLayer, pixel: usize, x: f32) -> Option<ActivationStep> {
    let function = function(l.spec)?;
    let (output, slope) = apply(function, x);
    let d_output = sample.grad(l.index).get(pixel).copied();
    Some(ActivationStep {
        name: l.name.clone(),
        function,
        input: x,
        output,
        d_output,
        d_input: d_output.map(|g| g * slope),
    })
}

/// The arithmetic of pixel `at` of `sample`'s maps, from the weights the step's forward pass
/// used ([`crate::trainer::ConvFilters::forward_weights`]).
pub fn inspect(
    model: &ModelView,
    sample: &SampleView,
    filters: &FilterView,
    at: PixelRef,
) -> Result<Inspection, InspectError> {
    let layer = model.layer(at.layer).ok_or(InspectError::NotMaps(at.layer))?;
    let (oc, oh, ow) =
        maps(layer.output).filter(|_| layer.spec != LayerSpec::Flatten).ok_or(InspectError::NotMaps(at.layer))?;
    for (what, value, limit) in [("channel", at.channel, oc), ("row", at.y, oh), ("column", at.x, ow)] {
        if value >= limit {
            return Err(InspectError::OutOfRange { what, value, limit });
        }
    }
    let map = sample.output(at.layer);
    if map.is_empty() {
        return Err(InspectError::NotComputed(layer.name.clone()));
    }
    if map.len() != oc * oh * ow {
        return Err(InspectError::Inconsistent(layer.name.clone()));
    }
    let pixel = (at.channel * oh + at.y) * ow + at.x;
    if let Some(conv) = conv_layer_of(model, at.layer) {
        return conv_pixel(model, sample, filters, at, conv, pixel).map(Inspection::Conv);
    }
    let input = sample.layer_input(at.layer);
    let (ic, ih, iw) = maps(layer.input).ok_or(InspectError::NotMaps(at.layer))?;
    if input.len() != ic * ih * iw {
        return Err(InspectError::Inconsistent(input_name(model, at.layer)));
    }
    match layer.spec {
        LayerSpec::MaxPool { k, stride } | LayerSpec::AvgPool { k, stride } => {
            let max = matches!(layer.spec, LayerSpec::MaxPool { .. });
            let origin = (at.y * stride, at.x * stride);
            let mut values = Vec::with_capacity(k * k);
            for di in 0..k {
                for dj in 0..k {
                    let (y, x) = (origin.0 + di, origin.1 + dj);
                    values.push(if y < ih && x < iw { input[(at.channel * ih + y) * iw + x] } else { 0.0 });
                }
            }
            let winner = if max {
                // The engine's choice (the first maximum, as PyTorch's), as an index in the window.
                let won = sample.winners.get(at.layer).and_then(|w| w.get(pixel)).map(|&w| w as usize);
                won.map(|w| (w / iw - origin.0) * k + (w % iw - origin.1)).filter(|i| *i < k * k)
            } else {
                None
            };
            let result = if max {
                values.iter().copied().fold(f32::NEG_INFINITY, f32::max)
            } else {
                (values.iter().map(|v| f64::from(*v)).sum::<f64>() / (k * k) as f64) as f32
            };
            let d_output = sample.grad(at.layer).get(pixel).copied();
            let d_input = d_output.map(|g| {
                (0..k * k)
                    .map(|i| if max { if Some(i) == winner { g } else { 0.0 } } else { g / (k * k) as f32 })
                    .collect()
            });
            Ok(Inspection::Pool(PoolPixel {
                at,
                name: layer.name.clone(),
                input_name: input_name(model, at.layer),
                max,
                window: k,
                stride,
                origin,
                values,
                winner,
                result,
                map_value: map[pixel],
                d_output,
                d_input,
            }))
        }
        _ => {
            let step = activation_step(sample, layer, pixel, input[pixel]).ok_or(InspectError::NotMaps(at.layer))?;
            Ok(Inspection::Activation(ActivationPixel {
                at,
                input_name: input_name(model, at.layer),
                step,
                map_value: map[pixel],
            }))
        }
    }
}

fn conv_pixel(
    model: &ModelView,
    sample: &SampleView,
    filters: &FilterView,
    at: PixelRef,
    conv: usize,
    pixel: usize,
) -> Result<PixelInspection, InspectError> {
    let layer = model.layer(conv).ok_or(InspectError::NotMaps(conv))?;
    let LayerSpec::Conv { filters: filters_n, k, stride, pad } = layer.spec else {
        return Err(InspectError::NotMaps(conv));
    };
    let (in_c, in_h, in_w) = maps(layer.input).ok_or(InspectError::NotMaps(conv))?;
    let (_, oh, ow) = maps(layer.output).ok_or(InspectError::NotMaps(conv))?;
    let bank = filters.of_layer(conv).ok_or_else(|| InspectError::Inconsistent(format!("{} filters", layer.name)))?;
    let (weights, biases) = bank.forward_weights();
    let input = sample.layer_input(conv);
    let map = sample.output(conv);
    if map.is_empty() {
        return Err(InspectError::NotComputed(layer.name.clone()));
    }
    let taps = in_c * k * k;
    let checks = [
        (map.len() == filters_n * oh * ow, layer.name.clone()),
        (input.len() == in_c * in_h * in_w, input_name(model, conv)),
        (weights.len() == filters_n * taps, "weights".to_string()),
        (biases.len() == filters_n, "biases".to_string()),
    ];
    if let Some((_, what)) = checks.into_iter().find(|(ok, _)| !ok) {
        return Err(InspectError::Inconsistent(what));
    }
    let kernel = &weights[at.channel * taps..(at.channel + 1) * taps];
    let origin = ((at.y * stride) as isize - pad as isize, (at.x * stride) as isize - pad as isize);
    // Where each tap lands in the input, or None in the padding.
    let source = |di: usize, dj: usize| -> Option<(usize, usize)> {
        let y = usize::try_from(origin.0 + di as isize).ok().filter(|y| *y < in_h)?;
        let x = usize::try_from(origin.1 + dj as isize).ok().filter(|x| *x < in_w)?;
        Some((y, x))
    };
    let in_padding: Vec<bool> = (0..k * k).map(|t| source(t / k, t % k).is_none()).collect();
    let mut patch = vec![0.0f32; taps];
    for c in 0..in_c {
        for di in 0..k {
            for dj in 0..k {
                if let Some((y, x)) = source(di, dj) {
                    patch[(c * k + di) * k + dj] = input[(c * in_h + y) * in_w + x];
                }
            }
        }
    }
    let products: Vec<f32> = patch.iter().zip(kernel).map(|(p, w)| p * w).collect();
    // Sums in f64: the closest to the exact sum, so the displayed total differs from the
    // engine's f32 value only by the engine's own rounding.
    let channel_sums64: Vec<f64> =
        products.chunks(k * k).map(|c| c.iter().map(|v| f64::from(*v)).sum::<f64>()).collect();
    let bias = biases[at.channel];
    let total = (f64::from(bias) + channel_sums64.iter().sum::<f64>()) as f32;
    // The activation right after the conv, if any: its value is computed from the total.
    let activation = model.layer(conv + 1).and_then(|l| activation_step(sample, l, pixel, total));
    let grad = sample.grad(conv);
    let gradient = (grad.len() == filters_n * oh * ow).then(|| grad[pixel]).map(|g| PixelGradient {
        d_conv: g,
        dw: patch.iter().map(|p| g * p).collect(),
        db: g,
        dx: kernel.iter().enumerate().map(|(t, w)| if in_padding[t % (k * k)] { 0.0 } else { g * w }).collect(),
    });
    Ok(PixelInspection {
        at,
        conv_name: layer.name.clone(),
        input_name: input_name(model, conv),
        channels: in_c,
        kernel: k,
        stride,
        pad,
        origin,
        patch,
        in_padding,
        weights: kernel.to_vec(),
        products,
        channel_sums: channel_sums64.iter().map(|v| *v as f32).collect(),
        colour_channels: in_c == COLOUR_CHANNELS.len() && reads_image_channels(model, conv),
        bias,
        total,
        map_value: map[pixel],
        by_fourier: false,
        activation,
        gradient,
    })
}
