//! [`Sequential`]: any planned network, trained one phase at a time like the post's
//! [`Network`](crate::engine::Network).
//!
//! The phases come from the list: forward through each layer, the loss, its gradient, backward
//! through each layer in reverse, the update. Parameters are named as PyTorch's `state_dict`
//! names an `nn.Sequential`'s: `<index>.weight`, `<index>.bias`.

use std::ops::ControlFlow;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::engine::conv::ConvWorkspace;
use crate::engine::params::{sum_of_squares, sum_of_squares_blocked};
use crate::engine::{ConvEngine, EngineError, Float, Hyper, Init, Real, argmax, softmax_xent};

use super::layers::activation::{self, Activation};
use super::layers::pool::{self, PoolShape};
use super::layers::{conv, flatten, linear};
use super::optim::{AdamState, Optimizer, adam_step, sgd_step};
use super::shape::{Plan, Shape};
use super::spec::LayerSpec;

/// One step of training a [`Sequential`]: what the app steps through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Layer `i` (its position in the line) computes its output from its input.
    Forward(usize),
    /// Softmax of the last layer's scores, the mean cross-entropy and the L2 term.
    Loss,
    /// The loss's gradient with respect to the scores: `(p − onehot(y)) / N`.
    LossBackward,
    /// Layer `i` computes its parameters' gradients and its input's gradient.
    Backward(usize),
    /// The optimizer changes every parameter.
    Update,
}

impl Phase {
    /// True for [`Phase::LossBackward`] and the backward phases.
    pub fn is_backward(self) -> bool {
        matches!(self, Phase::Backward(_) | Phase::LossBackward)
    }
}

impl Plan {
    /// Every phase of one training step, in order: forward through each layer, the loss and
    /// its gradient, backward through each layer in reverse, the update.
    pub fn phases(&self) -> Vec<Phase> {
        let n = self.layers.len();
        let mut phases: Vec<Phase> = (0..n).map(Phase::Forward).collect();
        phases.push(Phase::Loss);
        phases.push(Phase::LossBackward);
        phases.extend((0..n).rev().map(Phase::Backward));
        phases.push(Phase::Update);
        phases
    }
}

/// One parameter tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamTensor<T> {
    /// PyTorch's name: `<index>.weight` or `<index>.bias`.
    pub name: String,
    /// Position of its layer in the line.
    pub layer: usize,
    /// PyTorch's shape: `[F, C, K, K]`, `[F]`, `[OUT, IN]` or `[OUT]`.
    pub shape: Vec<usize>,
    /// The values, row-major.
    pub data: Vec<T>,
}

/// Every tensor of one batch: the input, each layer's output and, after the backward phases,
/// each one's gradient, with the softmax and the loss.
///
/// Tensor `j` is the input (`j = 0`) or layer `j − 1`'s output, laid out `[N, …shape]`.
/// `flatten`'s output is stored in its input's buffer (the same values in the same order).
#[derive(Clone, Debug, Default)]
pub struct Tensors<T> {
    /// Batch size N.
    pub n: usize,
    /// Labels of the batch.
    pub labels: Vec<usize>,
    values: Vec<Vec<T>>,
    grads: Vec<Vec<T>>,
    winners: Vec<Vec<u32>>,
    slots: Vec<usize>,
    /// Softmax probabilities `[N, CLASSES]`.
    pub probs: Vec<T>,
    /// Mean cross-entropy of the batch.
    pub data_loss: T,
    /// The L2 term `0.5·reg·ΣW²` over the fc weights.
    pub reg_loss: T,
}

impl<T: Float> Tensors<T> {
    /// The batch's images `[N, C, H, W]`.
    pub fn input(&self) -> &[T] {
        self.values.first().map_or(&[], Vec::as_slice)
    }

    /// Layer `i`'s output (empty before its forward phase has run in this step, or if there is
    /// no layer `i`).
    pub fn output(&self, i: usize) -> &[T] {
        self.slots.get(i + 1).and_then(|s| self.values.get(*s)).map_or(&[], Vec::as_slice)
    }

    /// ∂L/∂(layer `i`'s output), once its gradient has been computed.
    pub fn output_grad(&self, i: usize) -> &[T] {
        self.slots.get(i + 1).and_then(|s| self.grads.get(*s)).map_or(&[], Vec::as_slice)
    }

    /// ∂L/∂input (only with [`Sequential::compute_input_grad`], after the last backward phase).
    pub fn input_grad(&self) -> &[T] {
        self.grads.first().map_or(&[], Vec::as_slice)
    }

    /// For a max pool `i`: for each output value, the index within its input plane
    /// (`row·W + col`) of the input that won its window. Empty for other layers.
    pub fn winners(&self, i: usize) -> &[u32] {
        self.winners.get(i).map_or(&[], Vec::as_slice)
    }

    /// Class scores `[N, CLASSES]`: the last layer's output.
    pub fn scores(&self) -> &[T] {
        self.slots.last().and_then(|s| self.values.get(*s)).map_or(&[], Vec::as_slice)
    }

    /// Total loss: data term plus L2 term.
    pub fn loss(&self) -> T {
        self.data_loss + self.reg_loss
    }

    /// The most probable class of each image.
    pub fn predictions(&self) -> Vec<usize> {
        let classes = self.probs.len().checked_div(self.n).unwrap_or(1).max(1);
        self.probs.chunks(classes).map(argmax).collect()
    }

    /// Number of images whose most probable class is the label.
    pub fn correct(&self) -> usize {
        self.predictions().iter().zip(&self.labels).filter(|(p, y)| p == y).count()
    }

    /// Sizes every buffer for `n` images of `plan` (the gradients only `with_grads`), keeping buffers that already have the size
    /// (each phase overwrites its whole output).
    fn resize(&mut self, plan: &Plan, slots: &[usize], n: usize, with_grads: bool) {
        let len = |j: usize| n * if j == 0 { plan.input.len() } else { plan.layers[j - 1].output.len() };
        let size = |buf: &mut Vec<T>, want: usize| {
            if buf.len() != want {
                buf.clear();
                buf.resize(want, T::ZERO);
            }
        };
        self.n = n;
        self.slots = slots.to_vec();
        self.values.resize_with(slots.len(), Vec::new);
        self.grads.resize_with(slots.len(), Vec::new);
        for j in 0..slots.len() {
            let own = if slots[j] == j { len(j) } else { 0 };
            size(&mut self.values[j], own);
            size(&mut self.grads[j], if j == 0 || !with_grads { 0 } else { own });
        }
        self.winners.resize_with(plan.layers.len(), Vec::new);
        for (l, win) in plan.layers.iter().zip(&mut self.winners) {
            let want = if matches!(l.spec, LayerSpec::MaxPool { .. }) { n * l.output.len() } else { 0 };
            if win.len() != want {
                win.clear();
                win.resize(want, 0);
            }
        }
        size(&mut self.probs, n * plan.classes);
        self.data_loss = T::ZERO;
        self.reg_loss = T::ZERO;
    }
}

/// Any planned network with its parameters, optimizer state and the tensors of the current
/// batch, run one phase at a time.
#[derive(Debug)]
pub struct Sequential<T: Float> {
    plan: Plan,
    /// Which implementation runs the layers (convolution, pools, activations).
    pub engine: ConvEngine,
    /// How the update phase changes the parameters.
    pub optimizer: Optimizer,
    /// Also compute ∂L/∂input in the first layer's backward phase (gradient checks, saliency).
    pub compute_input_grad: bool,
    /// Also sum the squares of the new weights and of the gradients in the update phase (see
    /// [`Sequential::update_squares`]).
    pub measure_update: bool,
    params: Vec<ParamTensor<T>>,
    grads: Vec<Vec<T>>,
    /// After an update: the change it made to each parameter (for SGD, also the momentum buffer).
    deltas: Vec<Vec<T>>,
    adam: Vec<AdamState<T>>,
    adam_steps: u64,
    /// For each layer, the index in `params` of its weight (its bias follows).
    weight_of: Vec<Option<usize>>,
    slots: Vec<usize>,
    acts: Tensors<T>,
    phases: Vec<Phase>,
    cursor: usize,
    update_squares: Vec<(f64, f64)>,
    ws: Vec<ConvWorkspace<T>>,
}

impl<T: Float> Sequential<T> {
    /// A fresh network for `plan` with weights drawn from `seed` (biases zero).
    ///
    /// The draws match [`Params::init`](crate::engine::Params::init): one ChaCha8 stream (stream
    /// 1 of the seed), weight tensors in order, N(0, 1e-4²) for [`Init::Post`] and
    /// N(0, 2/fan-in) for [`Init::He`]; so on the `post` line the weights are the post's
    /// network's, bit for bit.
    pub fn new(plan: Plan, init: Init, seed: u64, engine: ConvEngine) -> Self {
        let mut net = Self::zeros(plan, engine);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(1);
        for (l, w) in net.weight_of.clone().iter().enumerate() {
            let Some(w) = *w else { continue };
            let std = match init {
                Init::Post => 1e-4,
                Init::He => (2.0 / net.plan.layers[l].fan_in().max(1) as f64).sqrt(),
            };
            for v in &mut net.params[w].data {
                *v = <T as Real>::from_f64(std * standard_normal(&mut rng));
            }
        }
        net
    }

    /// A network for `plan` with every parameter 0 (set them with [`Sequential::set_param`]).
    pub fn zeros(plan: Plan, engine: ConvEngine) -> Self {
        let mut params = Vec::new();
        let mut weight_of = Vec::with_capacity(plan.layers.len());
        for l in &plan.layers {
            let tensors = l.param_shapes();
            weight_of.push((!tensors.is_empty()).then_some(params.len()));
            for (name, shape) in tensors {
                let len = shape.iter().product();
                params.push(ParamTensor { name, layer: l.index, shape, data: vec![T::ZERO; len] });
            }
        }
        let zeros = || params.iter().map(|p| vec![T::ZERO; p.data.len()]).collect::<Vec<_>>();
        let slots = flatten::storage_slots(&plan.spec.layers);
        Self {
            engine,
            optimizer: Optimizer::Sgd,
            compute_input_grad: false,
            measure_update: false,
            grads: zeros(),
            deltas: zeros(),
            adam: Vec::new(),
            adam_steps: 0,
            weight_of,
            slots,
            acts: Tensors::default(),
            phases: plan.phases(),
            cursor: 0,
            update_squares: Vec::new(),
            ws: plan.layers.iter().map(|_| ConvWorkspace::default()).collect(),
            params,
            plan,
        }
    }

    /// The plan this network was built from.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The phases of one training step, in order.
    pub fn phases(&self) -> &[Phase] {
        &self.phases
    }

    /// The phase that runs next, or `None` when no batch is loaded or its step is complete.
    pub fn next_phase(&self) -> Option<Phase> {
        if self.acts.n == 0 { None } else { self.phases.get(self.cursor).copied() }
    }

    /// How many phases of the current step have run.
    pub fn phases_done(&self) -> usize {
        self.cursor
    }

    /// The tensors of the current batch.
    pub fn tensors(&self) -> &Tensors<T> {
        &self.acts
    }

    /// Every parameter tensor, in `state_dict` order.
    pub fn params(&self) -> &[ParamTensor<T>] {
        &self.params
    }

    /// The parameter called `name` (`3.weight`).
    pub fn param(&self, name: &str) -> Option<&ParamTensor<T>> {
        self.params.iter().find(|p| p.name == name)
    }

    /// The values of the parameter called `name`, to change in place (a gradient check's nudge).
    pub fn param_mut(&mut self, name: &str) -> Option<&mut [T]> {
        self.params.iter_mut().find(|p| p.name == name).map(|p| p.data.as_mut_slice())
    }

    /// Replaces the values of parameter `name`; refused if there is no such tensor or the
    /// length is not its size.
    pub fn set_param(&mut self, name: &str, values: &[T]) -> Result<(), EngineError> {
        let Some(p) = self.params.iter_mut().find(|p| p.name == name) else {
            let names: Vec<&str> = self.params.iter().map(|p| p.name.as_str()).collect();
            return Err(EngineError::Config(format!("no parameter `{name}` (this network has {})", names.join(", "))));
        };
        if values.len() != p.data.len() {
            return Err(EngineError::Config(format!(
                "`{name}` needs {} values (shape {:?}), got {}",
                p.data.len(),
                p.shape,
                values.len()
            )));
        }
        p.data.copy_from_slice(values);
        Ok(())
    }

    /// The index in [`Sequential::params`] of layer `layer`'s weight (its bias is the next one),
    /// or `None` for a layer without parameters.
    pub fn weight_index(&self, layer: usize) -> Option<usize> {
        self.weight_of.get(layer).copied().flatten()
    }

    /// ∂L/∂(parameter `i`), in [`Sequential::params`] order (after the backward phases).
    pub fn grad(&self, i: usize) -> &[T] {
        self.grads.get(i).map_or(&[], Vec::as_slice)
    }

    /// The change the last update made to parameter `i` (ΔW); for SGD also its momentum buffer.
    pub fn delta(&self, i: usize) -> &[T] {
        self.deltas.get(i).map_or(&[], Vec::as_slice)
    }

    /// After this step's update, with [`Sequential::measure_update`] set: `(Σp², Σg²)` of each
    /// parameter tensor (the new values, the gradient used), summed as
    /// [`sum_of_squares`] sums them.
    pub fn update_squares(&self) -> Option<&[(f64, f64)]> {
        (!self.update_squares.is_empty()).then_some(self.update_squares.as_slice())
    }

    /// True if every parameter is finite.
    pub fn all_finite(&self) -> bool {
        self.params.iter().all(|p| p.data.par_iter().all(|v| v.is_finite()))
    }

    /// Loads a batch (pixels `[N, C, H, W]` flattened, and labels) and rewinds to the first phase.
    pub fn load_batch(&mut self, images: &[T], labels: &[usize]) -> Result<(), EngineError> {
        self.check_batch(images, labels)?;
        self.acts.resize(&self.plan, &self.slots, labels.len(), true);
        self.acts.values[0].copy_from_slice(images);
        self.acts.labels.clear();
        self.acts.labels.extend_from_slice(labels);
        self.cursor = 0;
        self.update_squares.clear();
        Ok(())
    }

    /// Runs the next phase of the current step and returns it (`None` if there is none).
    /// `progress(done, total)` reports progress inside long phases (the naive convolutions).
    pub fn step_phase(&mut self, hyper: &Hyper, progress: &mut dyn FnMut(usize, usize)) -> Option<Phase> {
        match self.step_phase_unless(hyper, progress, &|| false)? {
            ControlFlow::Continue(phase) | ControlFlow::Break(phase) => Some(phase),
        }
    }

    /// [`Sequential::step_phase`] that gives up inside a long naive convolution as soon as
    /// `stop()` is true: `Break(phase)` then means the phase did not complete and is still the
    /// next one. Its inputs are untouched (a phase only writes its outputs), so running it again
    /// gives the bits it would have given.
    pub fn step_phase_unless(
        &mut self,
        hyper: &Hyper,
        progress: &mut dyn FnMut(usize, usize),
        stop: &dyn Fn() -> bool,
    ) -> Option<ControlFlow<Phase, Phase>> {
        let phase = self.next_phase()?;
        let flow = match phase {
            Phase::Forward(i) => forward_layer(
                &self.plan,
                &self.slots,
                self.engine,
                &self.params,
                &self.weight_of,
                &mut self.acts,
                &mut self.ws,
                i,
                progress,
                stop,
            ),
            Phase::Loss => {
                let reg = <T as Real>::from_f32(hyper.reg);
                loss_forward(&self.plan, &self.params, &mut self.acts, reg);
                ControlFlow::Continue(())
            }
            Phase::LossBackward => {
                let a = &mut self.acts;
                let last = *self.slots.last().unwrap_or(&0);
                softmax_xent::backward(self.plan.classes, &a.probs, &a.labels, &mut a.grads[last]);
                ControlFlow::Continue(())
            }
            Phase::Backward(i) => self.backward_layer(i, hyper, progress, stop),
            Phase::Update => {
                self.update(hyper);
                ControlFlow::Continue(())
            }
        };
        if flow.is_break() {
            return Some(ControlFlow::Break(phase));
        }
        self.cursor += 1;
        Some(ControlFlow::Continue(phase))
    }

    /// Drops the loaded batch: no phase is next until [`Sequential::load_batch`].
    pub fn clear_batch(&mut self) {
        self.acts.n = 0;
        self.acts.labels.clear();
        self.cursor = 0;
        self.update_squares.clear();
    }

    /// Goes back to the first phase of the loaded batch (its images and labels stay; the
    /// caller puts back the parameters the step started from).
    pub fn restart_step(&mut self) {
        self.cursor = 0;
        self.update_squares.clear();
    }

    /// The parameters and optimizer state, copied into `into` (whose buffers are reused).
    pub fn save_state(&self, into: &mut SeqState<T>) {
        copy_all(&mut into.params, self.params.iter().map(|p| p.data.as_slice()));
        copy_all(&mut into.deltas, self.deltas.iter().map(Vec::as_slice));
        into.adam.clone_from(&self.adam);
        into.adam_steps = self.adam_steps;
    }

    /// The state [`Sequential::save_state`] copied, put back in this network's own buffers.
    /// Refused if it is not this network's (another number or size of tensors).
    pub fn restore_state(&mut self, from: &SeqState<T>) -> Result<(), EngineError> {
        let fits = from.params.len() == self.params.len()
            && from.deltas.len() == self.deltas.len()
            && self.params.iter().zip(&from.params).all(|(p, q)| p.data.len() == q.len())
            && self.deltas.iter().zip(&from.deltas).all(|(p, q)| p.len() == q.len());
        if !fits {
            return Err(EngineError::Config("the saved state is not this network's".into()));
        }
        for (p, q) in self.params.iter_mut().zip(&from.params) {
            p.data.copy_from_slice(q);
        }
        for (p, q) in self.deltas.iter_mut().zip(&from.deltas) {
            p.copy_from_slice(q);
        }
        self.adam.clone_from(&from.adam);
        self.adam_steps = from.adam_steps;
        Ok(())
    }

    /// Adam's state per parameter tensor (empty before Adam's first update) and the number of
    /// Adam updates made.
    pub fn adam_state(&self) -> (&[AdamState<T>], u64) {
        (&self.adam, self.adam_steps)
    }

    /// Replaces the optimizer state: SGD's momentum buffers (one per parameter tensor, in
    /// [`Sequential::params`] order) and Adam's state and step count. Refused, naming the
    /// tensor, when a size does not fit.
    pub fn set_optimizer_state(
        &mut self,
        momentum: Vec<Vec<T>>,
        adam: Vec<AdamState<T>>,
        adam_steps: u64,
    ) -> Result<(), EngineError> {
        let check = |what: &str, got: &[Vec<T>]| -> Result<(), EngineError> {
            if got.len() != self.params.len() {
                return Err(EngineError::Config(format!(
                    "{what}: {} tensors for a network of {}",
                    got.len(),
                    self.params.len()
                )));
            }
            for (p, g) in self.params.iter().zip(got) {
                if g.len() != p.data.len() {
                    return Err(EngineError::Config(format!(
                        "{what} of {} has {} values but the tensor has {}",
                        p.name,
                        g.len(),
                        p.data.len()
                    )));
                }
            }
            Ok(())
        };
        check("momentum", &momentum)?;
        if !adam.is_empty() {
            check("Adam's mean", &adam.iter().map(|a| a.m.clone()).collect::<Vec<_>>())?;
            check("Adam's mean square", &adam.iter().map(|a| a.v.clone()).collect::<Vec<_>>())?;
        }
        self.deltas = momentum;
        self.adam = adam;
        self.adam_steps = adam_steps;
        Ok(())
    }

    /// Runs every remaining phase of the current step.
    pub fn finish_step(&mut self, hyper: &Hyper, progress: &mut dyn FnMut(usize, usize)) {
        while self.step_phase(hyper, progress).is_some() {}
    }

    /// One whole training step on a batch: forward, loss, backward, update. Returns the batch
    /// loss (computed before the update).
    pub fn run_step(&mut self, images: &[T], labels: &[usize], hyper: &Hyper) -> Result<T, EngineError> {
        self.load_batch(images, labels)?;
        self.finish_step(hyper, &mut |_, _| {});
        Ok(self.acts.loss())
    }

    /// Forward pass and loss only, into `out` (not the network's own batch tensors), so that
    /// evaluating or inspecting other images leaves the step being shown untouched.
    pub fn forward_into(
        &mut self,
        images: &[T],
        labels: &[usize],
        reg: f32,
        out: &mut Tensors<T>,
    ) -> Result<(), EngineError> {
        self.check_batch(images, labels)?;
        out.resize(&self.plan, &self.slots, labels.len(), false);
        out.values[0].copy_from_slice(images);
        out.labels.clear();
        out.labels.extend_from_slice(labels);
        for i in 0..self.plan.layers.len() {
            // Nothing can stop it: the flow is always `Continue`.
            let _ = forward_layer(
                &self.plan,
                &self.slots,
                self.engine,
                &self.params,
                &self.weight_of,
                out,
                &mut self.ws,
                i,
                &mut |_, _| {},
                &|| false,
            );
        }
        loss_forward(&self.plan, &self.params, out, <T as Real>::from_f32(reg));
        Ok(())
    }

    fn check_batch(&self, images: &[T], labels: &[usize]) -> Result<(), EngineError> {
        let per = self.plan.input.len();
        if labels.is_empty() {
            return Err(EngineError::Input("a batch needs at least one image".into()));
        }
        if images.len() != labels.len() * per {
            return Err(EngineError::Input(format!(
                "{} pixel values for {} labels: expected {} ({} per image)",
                images.len(),
                labels.len(),
                labels.len() * per,
                per
            )));
        }
        if let Some((i, y)) = labels.iter().enumerate().find(|(_, y)| **y >= self.plan.classes) {
            return Err(EngineError::Input(format!(
                "label {y} of image {i} is not below {} classes",
                self.plan.classes
            )));
        }
        Ok(())
    }

    fn backward_layer(
        &mut self,
        i: usize,
        hyper: &Hyper,
        progress: &mut dyn FnMut(usize, usize),
        stop: &dyn Fn() -> bool,
    ) -> ControlFlow<()> {
        let (si, so) = (self.slots[i], self.slots[i + 1]);
        if si == so {
            return ControlFlow::Continue(()); // flatten: its input's gradient is its output's, in the same buffer
        }
        let layer = &self.plan.layers[i];
        let a = &mut self.acts;
        let n = a.n;
        if si == 0 {
            let want = if self.compute_input_grad { a.values[0].len() } else { 0 };
            a.grads[0].resize(want, T::ZERO);
        }
        let (lo, hi) = a.grads.split_at_mut(so);
        let dy = hi[0].as_slice();
        let dx = if si == 0 && !self.compute_input_grad { None } else { Some(lo[si].as_mut_slice()) };
        let (x, y) = (a.values[si].as_slice(), a.values[so].as_slice());
        let engine = self.engine;
        match layer.spec {
            LayerSpec::Conv { filters, k, stride, pad } => {
                let Some(wi) = self.weight_of[i] else { return ControlFlow::Continue(()) };
                let (gw, gb) = self.grads.split_at_mut(wi + 1);
                let s = conv::shape(n, layer.input, filters, k, stride, pad);
                return conv::backward(
                    engine,
                    &s,
                    x,
                    &self.params[wi].data,
                    dy,
                    &mut gw[wi],
                    &mut gb[0],
                    dx,
                    &mut self.ws[i],
                    progress,
                    stop,
                );
            }
            LayerSpec::Fc { out } => {
                let Some(wi) = self.weight_of[i] else { return ControlFlow::Continue(()) };
                let (gw, gb) = self.grads.split_at_mut(wi + 1);
                let reg = <T as Real>::from_f32(hyper.reg);
                let inputs = layer.input.len();
                linear::backward(n, inputs, out, x, &self.params[wi].data, dy, reg, &mut gw[wi], &mut gb[0], dx);
            }
            LayerSpec::MaxPool { k, stride } => {
                if let Some(dx) = dx {
                    pool::max_backward(engine, &pool_shape(n, layer.input, k, stride), dy, &a.winners[i], dx);
                }
            }
            LayerSpec::AvgPool { k, stride } => {
                if let Some(dx) = dx {
                    pool::avg_backward(engine, &pool_shape(n, layer.input, k, stride), dy, dx);
                }
            }
            LayerSpec::Relu | LayerSpec::Tanh | LayerSpec::Sigmoid => {
                if let Some(dx) = dx {
                    activation::backward(engine, activation_of(layer.spec), x, y, dy, dx);
                }
            }
            LayerSpec::Flatten => {}
        }
        ControlFlow::Continue(())
    }

    fn update(&mut self, hyper: &Hyper) {
        match self.optimizer {
            Optimizer::Sgd => {
                let lr = <T as Real>::from_f32(hyper.lr);
                let mu = <T as Real>::from_f32(hyper.momentum);
                for ((p, g), v) in self.params.iter_mut().zip(&self.grads).zip(&mut self.deltas) {
                    sgd_step(&mut p.data, g, v, lr, mu);
                }
            }
            Optimizer::Adam { beta1, beta2, eps } => {
                self.adam.resize_with(self.params.len(), AdamState::default);
                self.adam_steps += 1;
                for (((p, g), st), d) in
                    self.params.iter_mut().zip(&self.grads).zip(&mut self.adam).zip(&mut self.deltas)
                {
                    adam_step(&mut p.data, g, st, d, f64::from(hyper.lr), self.adam_steps, beta1, beta2, eps);
                }
            }
        }
        self.update_squares = if self.measure_update {
            self.params.iter().zip(&self.grads).map(|(p, g)| (sum_of_squares(&p.data), sum_of_squares(g))).collect()
        } else {
            Vec::new()
        };
    }
}

/// A copy of a [`Sequential`]'s parameters and optimizer state ([`Sequential::save_state`]),
/// to go back to the start of a step.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SeqState<T> {
    /// Each parameter tensor's values, in [`Sequential::params`] order.
    pub params: Vec<Vec<T>>,
    /// SGD's momentum buffers (the last update's change).
    pub deltas: Vec<Vec<T>>,
    /// Adam's state per tensor.
    pub adam: Vec<AdamState<T>>,
    /// Adam updates made.
    pub adam_steps: u64,
}

/// Copies each source slice into the matching buffer, resizing the list and the buffers only
/// when their sizes differ.
fn copy_all<'a, T: Float + 'a>(into: &mut Vec<Vec<T>>, from: impl ExactSizeIterator<Item = &'a [T]>) {
    into.resize_with(from.len(), Vec::new);
    for (dst, src) in into.iter_mut().zip(from) {
        dst.clear();
        dst.extend_from_slice(src);
    }
}

fn activation_of(spec: LayerSpec) -> Activation {
    match spec {
        LayerSpec::Tanh => Activation::Tanh,
        LayerSpec::Sigmoid => Activation::Sigmoid,
        _ => Activation::Relu,
    }
}

fn pool_shape(n: usize, input: Shape, k: usize, stride: usize) -> PoolShape {
    let (c, h, w) = match input {
        Shape::Maps { c, h, w } => (c, h, w),
        Shape::Flat(len) => (len, 1, 1),
    };
    PoolShape { n, c, h, w, k, stride }
}

/// Layer `i`'s forward pass into `a`.
fn forward_layer<T: Float>(
    plan: &Plan,
    slots: &[usize],
    engine: ConvEngine,
    params: &[ParamTensor<T>],
    weight_of: &[Option<usize>],
    a: &mut Tensors<T>,
    ws: &mut [ConvWorkspace<T>],
    i: usize,
    progress: &mut dyn FnMut(usize, usize),
    stop: &dyn Fn() -> bool,
) -> ControlFlow<()> {
    let (si, so) = (slots[i], slots[i + 1]);
    if si == so {
        return ControlFlow::Continue(()); // flatten: its output is its input's buffer
    }
    let layer = &plan.layers[i];
    let n = a.n;
    let (lo, hi) = a.values.split_at_mut(so);
    let (x, y) = (lo[si].as_slice(), hi[0].as_mut_slice());
    match layer.spec {
        LayerSpec::Conv { filters, k, stride, pad } => {
            let Some(wi) = weight_of[i] else { return ControlFlow::Continue(()) };
            let s = conv::shape(n, layer.input, filters, k, stride, pad);
            return conv::forward(engine, &s, x, &params[wi].data, &params[wi + 1].data, y, &mut ws[i], progress, stop);
        }
        LayerSpec::Fc { out } => {
            let Some(wi) = weight_of[i] else { return ControlFlow::Continue(()) };
            linear::forward(n, layer.input.len(), out, x, &params[wi].data, &params[wi + 1].data, y);
        }
        LayerSpec::MaxPool { k, stride } => {
            pool::max_forward(engine, &pool_shape(n, layer.input, k, stride), x, y, &mut a.winners[i]);
        }
        LayerSpec::AvgPool { k, stride } => pool::avg_forward(engine, &pool_shape(n, layer.input, k, stride), x, y),
        LayerSpec::Relu | LayerSpec::Tanh | LayerSpec::Sigmoid => {
            activation::forward(engine, activation_of(layer.spec), x, y);
        }
        LayerSpec::Flatten => {}
    }
    ControlFlow::Continue(())
}

/// Softmax, mean cross-entropy and `0.5·reg·ΣW²` over the fc weights.
fn loss_forward<T: Float>(plan: &Plan, params: &[ParamTensor<T>], a: &mut Tensors<T>, reg: T) {
    let last = *a.slots.last().unwrap_or(&0);
    a.data_loss = softmax_xent::forward(plan.classes, &a.values[last], &a.labels, &mut a.probs);
    // Summed as the post's network sums ΣW_fc1² + ΣW_fc2², so the two give the same bits.
    let sum: f64 = params
        .iter()
        .filter(|p| p.name.ends_with(".weight") && matches!(plan.layers[p.layer].spec, LayerSpec::Fc { .. }))
        .map(|p| sum_of_squares_blocked(&p.data))
        .sum();
    a.reg_loss = reg * <T as Real>::from_f64(0.5 * sum);
}

/// A standard normal draw (Box–Muller), as [`Params::init`](crate::engine::Params::init) draws.
fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}
