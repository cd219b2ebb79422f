//! Finite-difference gradient check: proof, on live numbers, that backprop computes the
//! derivative of the loss.
//!
//! The network is copied into `f64`, where a central difference
//! `(L(w + h) − L(w − h)) / 2h` is accurate to ~1e-10, and compared with the analytic gradient
//! of the same `f64` network for a few seeded-random elements of every parameter tensor. The
//! loss is the one training minimises: mean cross-entropy plus `0.5·reg·(ΣW_fc1² + ΣW_fc2²)`.
//!
//! The loss is not differentiable where a ReLU input is exactly 0, and MNIST has many such
//! inputs: with zero biases every conv1 pixel over the blank background is exactly 0. When
//! `w ± h` moves any ReLU input across 0 the difference quotient is not a derivative, so such
//! entries are flagged ([`GradCheckEntry::crossed_kink`]) and left out of the maximum error.
//!
//! This module checks the post's [`Network`]; [`model::gradcheck`](super::model::gradcheck)
//! checks any planned network the same way and returns the same report.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::phase::Phase;
use super::{Activations, ConvEngine, EngineError, Hyper, ModelConfig, Network, PARAM_NAMES, Params};

/// The finite-difference step `h`. Small enough that the curvature term (`h²·L'''`) is far
/// below the analytic gradient, large enough that f64 rounding in the loss (~1e-15 of it)
/// divided by `2h` stays ~1e-10, and small enough that a ReLU input rarely crosses zero.
pub const STEP: f64 = 1e-5;

/// One checked element of one parameter tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct GradCheckEntry {
    /// The parameter tensor as a student names it: its layer's name and `weight` or `bias`
    /// (`conv2.weight`, as in [`PARAM_NAMES`] for the post's network).
    pub param: String,
    /// The tensor's name in PyTorch's `state_dict`: [`PARAM_NAMES`] for the post's network,
    /// `<index>.weight` / `<index>.bias` for an `nn.Sequential` (see
    /// [`model::gradcheck`](super::model::gradcheck)).
    pub tensor: String,
    /// The element's position in the tensor (e.g. `[filter, channel, row, column]`).
    pub index: Vec<usize>,
    /// Backprop's gradient of the loss with respect to the element.
    pub analytic: f64,
    /// `(L(w + h) − L(w − h)) / 2h`.
    pub numeric: f64,
    /// `|analytic − numeric| / max(|analytic|, |numeric|)` (0 when both are 0). Below ~1e-7
    /// the two agree to rounding; a wrong gradient shows as 1e-2 or more. For a gradient near
    /// [`GradCheckReport::noise`] in size the ratio is large whatever the code does: compare
    /// [`GradCheckEntry::abs_error`] with the noise instead.
    pub rel_error: f64,
    /// `|analytic − numeric|`.
    pub abs_error: f64,
    /// True if `w + h` and `w − h` put some ReLU input on different sides of 0 (or, in a
    /// network with max pooling, changed which input won a window): the numeric value then
    /// straddles a kink and the comparison means nothing.
    pub crossed_kink: bool,
    /// The first layer (in forward order) whose kink was crossed (`relu1`, `pool2`), exactly
    /// when [`GradCheckEntry::crossed_kink`].
    pub kink_layer: Option<String>,
}

/// The checked elements of one layer's weight and bias.
#[derive(Clone, Debug, PartialEq)]
pub struct GradCheckLayer {
    /// The layer as a student names it: `conv1`, `conv2`, `fc1`, `fc2`, … .
    pub layer: String,
    /// Weight elements first, then bias elements.
    pub entries: Vec<GradCheckEntry>,
    /// The largest relative error among the entries that did not cross a kink.
    pub max_rel_error: f64,
}

/// The result of a gradient check.
#[derive(Clone, Debug, PartialEq)]
pub struct GradCheckReport {
    /// The layers with parameters, in forward order.
    pub layers: Vec<GradCheckLayer>,
    /// Images in the batch the loss was computed on.
    pub images: usize,
    /// The loss at the unperturbed weights (f64).
    pub loss: f64,
    /// The L2 strength in the loss.
    pub reg: f64,
    /// The finite-difference step `h`.
    pub step_size: f64,
    /// The rounding noise of a numeric gradient, `ε·|loss| / h` (ε = f64's machine epsilon):
    /// an absolute error below a few times this is agreement however small the gradient.
    pub noise: f64,
    /// The convolution engine whose backward pass was checked.
    pub engine: ConvEngine,
}

impl GradCheckReport {
    /// The largest relative error of any entry that did not cross a kink.
    pub fn max_rel_error(&self) -> f64 {
        self.layers.iter().map(|l| l.max_rel_error).fold(0.0, f64::max)
    }
}

/// `|a − n| / max(|a|, |n|)`, 0 when both are 0.
pub fn relative_error(analytic: f64, numeric: f64) -> f64 {
    let scale = analytic.abs().max(numeric.abs());
    if scale == 0.0 { 0.0 } else { (analytic - numeric).abs() / scale }
}

/// Checks `per_tensor` elements (drawn from `seed`; all of a smaller tensor) of each of the
/// eight parameter tensors on the batch `images`/`labels`. `params` are only read: the check
/// runs on an `f64` copy. `progress(done, total)` is called after each loss evaluation.
pub fn check_gradients(
    cfg: &ModelConfig,
    params: &Params<f32>,
    images: &[f32],
    labels: &[usize],
    reg: f32,
    per_tensor: usize,
    seed: u64,
    engine: ConvEngine,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<GradCheckReport, EngineError> {
    let mut net = Network::<f64>::with_params(*cfg, params.convert(), engine)?;
    let images: Vec<f64> = images.iter().map(|v| f64::from(*v)).collect();
    net.load_batch(&images, labels)?;
    // lr 0: the update phase is never run here anyway, the hyper-parameters only carry reg.
    let hyper = Hyper { lr: 0.0, momentum: 0.0, reg, lr_decay: 1.0, optimizer: crate::engine::OptimizerKind::Sgd };
    while net.next_phase().is_some_and(|p| p != Phase::Update) {
        net.step_phase(&hyper, &mut |_, _| {});
    }
    let loss = net.activations().loss();
    let grads = net.grads.clone();

    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let shapes = Params::<f64>::shapes(cfg);
    let picks = pick(&mut rng, grads.slices().iter().map(|g| g.len()), per_tensor);
    let total = 1 + 2 * picks.iter().map(Vec::len).sum::<usize>();
    let mut done = 1;
    progress(done, total);

    let (mut plus_acts, mut minus_acts) = (Activations::default(), Activations::default());
    let loss_at = |net: &mut Network<f64>, tensor: usize, i: usize, value: f64, acts: &mut Activations<f64>| {
        net.params.slices_mut()[tensor][i] = value;
        net.forward_into(&images, labels, reg, acts).map(|()| acts.loss())
    };
    let mut layers: Vec<GradCheckLayer> = Vec::new();
    for (tensor, idx) in picks.iter().enumerate() {
        let param = PARAM_NAMES[tensor];
        let layer = param.split('.').next().unwrap_or(param);
        let mut entries = Vec::with_capacity(idx.len());
        for &i in idx {
            let original = net.params.slices()[tensor][i];
            let plus = loss_at(&mut net, tensor, i, original + STEP, &mut plus_acts)?;
            done += 1;
            progress(done, total);
            let minus = loss_at(&mut net, tensor, i, original - STEP, &mut minus_acts)?;
            done += 1;
            progress(done, total);
            net.params.slices_mut()[tensor][i] = original;
            let numeric = (plus - minus) / (2.0 * STEP);
            let analytic = grads.slices()[tensor][i];
            let kink_layer = crossed_kink(cfg, &plus_acts, &minus_acts).map(str::to_string);
            entries.push(GradCheckEntry {
                param: param.to_string(),
                tensor: param.to_string(),
                index: unravel(i, &shapes[tensor]),
                analytic,
                numeric,
                rel_error: relative_error(analytic, numeric),
                abs_error: (analytic - numeric).abs(),
                crossed_kink: kink_layer.is_some(),
                kink_layer,
            });
        }
        match layers.last_mut() {
            Some(l) if l.layer == layer => l.entries.extend(entries),
            _ => layers.push(GradCheckLayer { layer: layer.to_string(), entries, max_rel_error: 0.0 }),
        }
    }
    finish_layers(&mut layers);
    let noise = f64::EPSILON * loss.abs() / STEP;
    Ok(GradCheckReport { layers, images: labels.len(), loss, reg: f64::from(reg), step_size: STEP, noise, engine })
}

/// For each tensor of `lens` elements, `per_tensor` distinct positions drawn from `rng` (all of
/// a smaller tensor), in increasing order.
pub(crate) fn pick(rng: &mut ChaCha8Rng, lens: impl Iterator<Item = usize>, per_tensor: usize) -> Vec<Vec<usize>> {
    lens.map(|len| {
        let mut idx = rand::seq::index::sample(rng, len, per_tensor.min(len)).into_vec();
        idx.sort_unstable();
        idx
    })
    .collect()
}

/// Sets each layer's [`GradCheckLayer::max_rel_error`] from its entries off the kinks.
pub(crate) fn finish_layers(layers: &mut [GradCheckLayer]) {
    for l in layers {
        l.max_rel_error = l.entries.iter().filter(|e| !e.crossed_kink).map(|e| e.rel_error).fold(0.0, f64::max);
    }
}

/// True if the sign patterns `[x > 0]` of `a` and `b` differ: a ReLU with these inputs was on
/// in one pass and off in the other.
fn signs_differ(a: &[f64], b: &[f64]) -> bool {
    a.iter().zip(b).any(|(p, q)| (*p > 0.0) != (*q > 0.0))
}

/// The student name of the first ReLU (in forward order) whose input is positive in one pass
/// and not in the other: the post's relu1 (after conv1), then relu2 (after conv2, when there is
/// one), then the one after fc1.
fn crossed_kink(cfg: &ModelConfig, a: &Activations<f64>, b: &Activations<f64>) -> Option<&'static str> {
    let fc1_relu = if cfg.relu_after_conv2 { "relu3" } else { "relu2" };
    if signs_differ(&a.conv1, &b.conv1) {
        Some("relu1")
    } else if cfg.relu_after_conv2 && signs_differ(&a.conv2, &b.conv2) {
        Some("relu2")
    } else if signs_differ(&a.fc1, &b.fc1) {
        Some(fc1_relu)
    } else {
        None
    }
}

/// The multi-index of flat position `i` in a row-major tensor of `shape`.
pub(crate) fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for (slot, &dim) in index.iter_mut().zip(shape).rev() {
        *slot = i % dim.max(1);
        i /= dim.max(1);
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unravel_walks_row_major_order() {
        assert_eq!(unravel(0, &[2, 3, 4]), vec![0, 0, 0]);
        assert_eq!(unravel(4 * 3 + 2 * 4 + 1, &[2, 3, 4]), vec![1, 2, 1]);
    }

    #[test]
    fn relative_error_is_scale_free_and_zero_for_two_zeros() {
        assert_eq!(relative_error(0.0, 0.0), 0.0);
        assert!((relative_error(1e-8, 1.1e-8) - relative_error(1.0, 1.1)).abs() < 1e-12);
    }
}
