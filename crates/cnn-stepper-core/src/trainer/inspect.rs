//! The pixel inspector: one feature-map pixel's arithmetic redone from a [`Snapshot`], with no
//! round trip to the worker.
//!
//! For a pixel `(f, y, x)` of conv1 or conv2 (or the ReLU after it) this lists the input patch
//! the kernel sees (zeros in the padding, flagged), the kernel, their element-wise products, the
//! per-input-channel partial sums, the bias and the total, which is the value in the engine's
//! map up to float rounding. Once the backward pass has reached the pixel it adds the gradient
//! arriving there and what that gradient contributes to the kernel's gradient (`grad × patch`)
//! and to the patch's gradient (`grad × kernel`).

use crate::engine::ModelConfig;

use super::protocol::{FilterView, SampleView, Snapshot};

/// The feature maps a pixel can be picked from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InspectLayer {
    /// conv1's output.
    Conv1,
    /// relu1's output (conv1's arithmetic, then the ReLU).
    Relu1,
    /// conv2's output.
    Conv2,
    /// The ReLU after conv2, when the network has one.
    ReluConv2,
}

impl InspectLayer {
    /// The layer's short name, as in [`crate::engine::Layer::name`].
    pub fn name(self) -> &'static str {
        match self {
            InspectLayer::Conv1 => "conv1",
            InspectLayer::Relu1 => "relu1",
            InspectLayer::Conv2 => "conv2",
            InspectLayer::ReluConv2 => "relu_c2",
        }
    }

    /// True for conv2 and the ReLU after it.
    pub fn is_conv2(self) -> bool {
        matches!(self, InspectLayer::Conv2 | InspectLayer::ReluConv2)
    }
}

/// A pixel of a feature map of the selected digit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PixelRef {
    /// Which maps.
    pub layer: InspectLayer,
    /// The map (output channel, i.e. filter).
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
    NotComputed(&'static str),
    /// [`InspectLayer::ReluConv2`] on a network without that ReLU.
    #[error("this network has no ReLU after conv2")]
    NoReluAfterConv2,
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
    /// A snapshot whose tensors do not match its configuration (a bug, not a user error).
    #[error("the snapshot's {0} does not have the size its network configuration implies")]
    Inconsistent(&'static str),
}

/// One pixel's arithmetic. Patch, kernel and products are `C × K × K` row-major, with `C` the
/// input channels of the convolution (1 for conv1, conv1's 16 filters for conv2).
#[derive(Clone, Debug, PartialEq)]
pub struct PixelInspection {
    /// The pixel.
    pub at: PixelRef,
    /// The input tensor the patch is cut from: `"input"` (conv1) or `"relu1"` (conv2).
    pub input_name: &'static str,
    /// Input channels `C`.
    pub channels: usize,
    /// Kernel size `K`.
    pub kernel: usize,
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
    /// `C`: the sum of the products of each input channel.
    pub channel_sums: Vec<f32>,
    /// The filter's bias.
    pub bias: f32,
    /// `bias + Σ channel_sums` (summed in f64): the pre-activation value.
    pub total: f32,
    /// The value the engine put in the map, for comparison (equal up to float rounding).
    pub map_value: f32,
    /// True when the engine computed the map through Fourier transforms (the fast engine's
    /// conv2), whose rounding is relative to the whole map rather than to this one sum.
    pub by_fourier: bool,
    /// `max(0, total)` when a ReLU follows this convolution, else `None`.
    pub relu: Option<f32>,
    /// ∂L/∂(ReLU output) at the pixel, once the backward pass has reached the ReLU.
    pub d_relu: Option<f32>,
    /// Once the backward pass has reached the convolution's output: its gradient here.
    pub gradient: Option<PixelGradient>,
}

impl PixelInspection {
    /// Index of tap `(c, di, dj)` in `patch`, `weights`, `products` and the gradients.
    pub fn tap(&self, c: usize, di: usize, dj: usize) -> usize {
        (c * self.kernel + di) * self.kernel + dj
    }
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
    /// (0 in the padding, which is not a value anything depends on). For conv1 it is the
    /// gradient with respect to the digit's pixels, which training does not need.
    pub dx: Vec<f32>,
}

impl Snapshot {
    /// The arithmetic of pixel `at` of the selected digit; see [`inspect_pixel`].
    pub fn inspect_pixel(&self, at: PixelRef) -> Result<PixelInspection, InspectError> {
        let mut r = inspect_pixel(&self.config, &self.sample, &self.filters, at)?;
        r.by_fourier = at.layer.is_conv2()
            && self.settings.engine == crate::engine::ConvEngine::Fast
            && crate::engine::fftconv::suits(&crate::engine::network::conv2_shape(&self.config, 1));
        Ok(r)
    }
}

/// The arithmetic of pixel `at` of `sample`'s maps, from the weights the step's forward pass
/// used ([`FilterView::forward_weights`]), honouring the configuration's stride and padding.
pub fn inspect_pixel(
    cfg: &ModelConfig,
    sample: &SampleView,
    filters: &FilterView,
    at: PixelRef,
) -> Result<PixelInspection, InspectError> {
    if at.layer == InspectLayer::ReluConv2 && !cfg.relu_after_conv2 {
        return Err(InspectError::NoReluAfterConv2);
    }
    let conv2 = at.layer.is_conv2();
    let (w1, b1, w2, b2) = filters.forward_weights();
    let (h1, wd1) = cfg.conv1_out();
    let (in_c, in_h, in_w) =
        if conv2 { (cfg.conv1_filters, h1, wd1) } else { (cfg.in_channels, cfg.in_height, cfg.in_width) };
    let (filters_n, (oh, ow)) =
        if conv2 { (cfg.conv2_filters, cfg.conv2_out()) } else { (cfg.conv1_filters, cfg.conv1_out()) };
    let (input, input_name) = if conv2 { (&sample.relu1, "relu1") } else { (&sample.input, "input") };
    let (map, map_name) = if conv2 { (&sample.conv2, "conv2") } else { (&sample.conv1, "conv1") };
    let (weights, biases) = if conv2 { (w2, b2) } else { (w1, b1) };
    let has_relu = !conv2 || cfg.relu_after_conv2;

    for (what, value, limit) in [("channel", at.channel, filters_n), ("row", at.y, oh), ("column", at.x, ow)] {
        if value >= limit {
            return Err(InspectError::OutOfRange { what, value, limit });
        }
    }
    if map.is_empty() {
        return Err(InspectError::NotComputed(map_name));
    }
    let k = cfg.kernel;
    let taps = in_c * k * k;
    let checks = [
        (map.len() == filters_n * oh * ow, map_name),
        (input.len() == in_c * in_h * in_w, input_name),
        (weights.len() == filters_n * taps, "weights"),
        (biases.len() == filters_n, "biases"),
    ];
    if let Some((_, what)) = checks.iter().find(|(ok, _)| !ok) {
        return Err(InspectError::Inconsistent(what));
    }

    let kernel = &weights[at.channel * taps..(at.channel + 1) * taps];
    let origin = ((at.y * cfg.stride) as isize - cfg.pad as isize, (at.x * cfg.stride) as isize - cfg.pad as isize);
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
    let pixel = (at.channel * oh + at.y) * ow + at.x;

    let grad_at = |v: &Vec<f32>| (v.len() == filters_n * oh * ow).then(|| v[pixel]);
    let d_relu = match (has_relu, conv2) {
        (false, _) => None,
        (true, false) => grad_at(&sample.d_relu1),
        (true, true) => grad_at(&sample.d_relu_c2),
    };
    let gradient = grad_at(if conv2 { &sample.d_conv2 } else { &sample.d_conv1 }).map(|g| PixelGradient {
        d_conv: g,
        dw: patch.iter().map(|p| g * p).collect(),
        db: g,
        dx: kernel.iter().enumerate().map(|(t, w)| if in_padding[t % (k * k)] { 0.0 } else { g * w }).collect(),
    });

    Ok(PixelInspection {
        at,
        input_name,
        channels: in_c,
        kernel: k,
        origin,
        patch,
        in_padding,
        weights: kernel.to_vec(),
        products,
        channel_sums: channel_sums64.iter().map(|v| *v as f32).collect(),
        bias,
        total,
        map_value: map[pixel],
        by_fourier: false,
        relu: has_relu.then_some(total.max(0.0)),
        d_relu,
        gradient,
    })
}
