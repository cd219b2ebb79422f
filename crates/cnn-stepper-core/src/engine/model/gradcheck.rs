//! Finite-difference gradient check of any planned network: proof, on live numbers, that
//! backprop computes the derivative of the loss.
//!
//! The same method and report as the post's [`engine::gradcheck`](crate::engine::gradcheck):
//! the parameters are copied into a [`Sequential<f64>`], where a central difference
//! `(L(w + h) − L(w − h)) / 2h` is accurate to ~1e-10, and compared with backprop's gradient of
//! the same `f64` network for a few seeded-random elements of every parameter tensor. The loss
//! is the one training minimises: mean cross-entropy plus `0.5·reg·ΣW²` over the fc weights.
//!
//! Two kinds of layer make the loss non-differentiable at some points, and a difference quotient
//! across such a point is no derivative: a ReLU whose input is exactly 0 (MNIST's blank
//! background gives many), and a max pool whose window has a tie, where moving a weight by ±h
//! changes which input wins. An entry whose `w ± h` switched a ReLU on or off or changed a max
//! pool's winner, compared with the unperturbed pass or with each other, is flagged
//! ([`GradCheckEntry::crossed_kink`], [`GradCheckEntry::kink_layer`]) and left out of the
//! maximum error.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::engine::gradcheck::{
    GradCheckEntry, GradCheckLayer, GradCheckReport, STEP, finish_layers, pick, relative_error, signs_differ, unravel,
};
use crate::engine::{ConvEngine, EngineError, Hyper};

use super::sequential::{ParamTensor, Phase, Sequential, Tensors};
use super::shape::Plan;
use super::spec::LayerSpec;

/// Checks `per_tensor` elements (drawn from `seed`; all of a smaller tensor) of every parameter
/// tensor of `plan` on the batch `input` (`[N, C, H, W]` flattened) / `labels`, with backprop's
/// gradients on `engine`.
///
/// `params` are the network's tensors (as [`Sequential::params`] gives them, matched by name)
/// and are only read: the check runs on an `f64` copy. Layers are reported under their student
/// names (`conv1`, `fc2`), each entry with its student name (`conv1.weight`) and its PyTorch
/// name (`0.weight`). `progress(done, total)` is called after each loss evaluation.
pub fn check_gradients(
    plan: &Plan,
    params: &[ParamTensor<f32>],
    input: &[f32],
    labels: &[usize],
    reg: f32,
    per_tensor: usize,
    seed: u64,
    engine: ConvEngine,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<GradCheckReport, EngineError> {
    let mut net = network(plan, params, engine)?;
    let images: Vec<f64> = input.iter().map(|v| f64::from(*v)).collect();
    net.load_batch(&images, labels)?;
    // lr 0: the update phase is never run here anyway, the hyper-parameters only carry reg.
    let hyper = Hyper { lr: 0.0, momentum: 0.0, reg, lr_decay: 1.0, optimizer: crate::engine::OptimizerKind::Sgd };
    while net.next_phase().is_some_and(|p| p != Phase::Update) {
        net.step_phase(&hyper, &mut |_, _| {});
    }
    let analytic: Vec<Vec<f64>> = (0..net.params().len()).map(|i| net.grad(i).to_vec()).collect();
    let base = net.tensors().clone();
    compare(net, base, &images, labels, reg, &analytic, per_tensor, seed, progress)
}

/// Like [`check_gradients`], but checks the given `analytic` gradients (one per parameter
/// tensor, in [`Plan::param_shapes`] order) instead of computing them: to check gradients from
/// elsewhere, or to show that a wrong gradient is caught.
pub fn check_analytic(
    plan: &Plan,
    params: &[ParamTensor<f32>],
    input: &[f32],
    labels: &[usize],
    reg: f32,
    analytic: &[Vec<f64>],
    per_tensor: usize,
    seed: u64,
    engine: ConvEngine,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<GradCheckReport, EngineError> {
    let mut net = network(plan, params, engine)?;
    if analytic.len() != net.params().len() {
        return Err(EngineError::Config(format!(
            "{} gradients for {} parameter tensors",
            analytic.len(),
            net.params().len()
        )));
    }
    for (g, p) in analytic.iter().zip(net.params()) {
        if g.len() != p.data.len() {
            return Err(EngineError::Config(format!(
                "the gradient of `{}` has {} values, the tensor {} (shape {:?})",
                p.name,
                g.len(),
                p.data.len(),
                p.shape
            )));
        }
    }
    let images: Vec<f64> = input.iter().map(|v| f64::from(*v)).collect();
    let mut base = Tensors::default();
    net.forward_into(&images, labels, reg, &mut base)?;
    compare(net, base, &images, labels, reg, analytic, per_tensor, seed, progress)
}

/// A `f64` network for `plan` holding a copy of `params`, each matched by name and checked
/// against the plan's shape.
fn network(plan: &Plan, params: &[ParamTensor<f32>], engine: ConvEngine) -> Result<Sequential<f64>, EngineError> {
    let mut net = Sequential::<f64>::zeros(plan.clone(), engine);
    let wanted = plan.param_shapes();
    if params.len() != wanted.len() {
        let names: Vec<&str> = wanted.iter().map(|(n, _)| n.as_str()).collect();
        return Err(EngineError::Config(format!(
            "the network has {} parameter tensors ({}), got {}",
            wanted.len(),
            names.join(", "),
            params.len()
        )));
    }
    for (name, shape) in &wanted {
        let Some(p) = params.iter().find(|p| p.name == *name) else {
            return Err(EngineError::Config(format!("no parameter tensor `{name}` (shape {shape:?}) was given")));
        };
        if p.shape != *shape {
            return Err(EngineError::Config(format!(
                "`{name}` has shape {:?} but the network needs {shape:?}",
                p.shape
            )));
        }
        let values: Vec<f64> = p.data.iter().map(|v| f64::from(*v)).collect();
        net.set_param(name, &values)?;
    }
    Ok(net)
}

/// The finite differences of the picked elements against `analytic`, `base` being the forward
/// pass at the unperturbed parameters.
fn compare(
    mut net: Sequential<f64>,
    base: Tensors<f64>,
    images: &[f64],
    labels: &[usize],
    reg: f32,
    analytic: &[Vec<f64>],
    per_tensor: usize,
    seed: u64,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<GradCheckReport, EngineError> {
    let loss = base.loss();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let picks = pick(&mut rng, net.params().iter().map(|p| p.data.len()), per_tensor);
    let total = 1 + 2 * picks.iter().map(Vec::len).sum::<usize>();
    let mut done = 1;
    progress(done, total);

    let (mut plus_t, mut minus_t) = (Tensors::default(), Tensors::default());
    let loss_at = |net: &mut Sequential<f64>, name: &str, i: usize, value: f64, out: &mut Tensors<f64>| {
        match net.param_mut(name).and_then(|v| v.get_mut(i)) {
            Some(v) => *v = value,
            None => return Err(EngineError::Config(format!("`{name}` has no element {i}"))),
        }
        net.forward_into(images, labels, reg, out).map(|()| out.loss())
    };
    let plan = net.plan().clone();
    let mut layers: Vec<GradCheckLayer> = Vec::new();
    for (t, idx) in picks.iter().enumerate() {
        let (tensor, layer_index, shape) = {
            let p = &net.params()[t];
            (p.name.clone(), p.layer, p.shape.clone())
        };
        let layer = &plan.layers[layer_index];
        let kind = tensor.rsplit('.').next().unwrap_or("weight");
        let param = format!("{}.{kind}", layer.name);
        let mut entries = Vec::with_capacity(idx.len());
        for &i in idx {
            let original = net.params()[t].data[i];
            let plus = loss_at(&mut net, &tensor, i, original + STEP, &mut plus_t)?;
            done += 1;
            progress(done, total);
            let minus = loss_at(&mut net, &tensor, i, original - STEP, &mut minus_t)?;
            done += 1;
            progress(done, total);
            if let Some(v) = net.param_mut(&tensor).and_then(|v| v.get_mut(i)) {
                *v = original;
            }
            let numeric = (plus - minus) / (2.0 * STEP);
            let analytic = analytic[t][i];
            let kink_layer = crossed_kink(&plan, &base, &plus_t, &minus_t);
            entries.push(GradCheckEntry {
                param: param.clone(),
                tensor: tensor.clone(),
                index: unravel(i, &shape),
                analytic,
                numeric,
                rel_error: relative_error(analytic, numeric),
                abs_error: (analytic - numeric).abs(),
                crossed_kink: kink_layer.is_some(),
                kink_layer,
            });
        }
        match layers.last_mut() {
            Some(l) if l.layer == layer.name => l.entries.extend(entries),
            _ => layers.push(GradCheckLayer { layer: layer.name.clone(), entries, max_rel_error: 0.0 }),
        }
    }
    finish_layers(&mut layers);
    let noise = f64::EPSILON * loss.abs() / STEP;
    Ok(GradCheckReport { layers, images: labels.len(), loss, reg: f64::from(reg), step_size: STEP, noise, engine: net.engine })
}

/// The student name of the first layer (in forward order) whose kink lies between the three
/// passes: a ReLU whose input changed sign, or a max pool whose winner changed.
fn crossed_kink(plan: &Plan, base: &Tensors<f64>, plus: &Tensors<f64>, minus: &Tensors<f64>) -> Option<String> {
    plan.layers.iter().enumerate().find_map(|(i, l)| {
        let crossed = match l.spec {
            LayerSpec::Relu => {
                let (b, p, m) = if i == 0 {
                    (base.input(), plus.input(), minus.input())
                } else {
                    (base.output(i - 1), plus.output(i - 1), minus.output(i - 1))
                };
                signs_differ(b, p) || signs_differ(b, m)
            }
            LayerSpec::MaxPool { .. } => base.winners(i) != plus.winners(i) || base.winners(i) != minus.winners(i),
            _ => false,
        };
        crossed.then(|| l.name.clone())
    })
}
