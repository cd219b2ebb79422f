//! The network as an ordered list of phases, run one at a time or all at once.

use std::ops::ControlFlow;

use super::conv::{self, ConvShape, ConvWorkspace};
use super::params::{flat, sgd_update};
use super::phase::{Layer, Phase};
use super::{
    ConvEngine, EngineError, Float, Hyper, Init, ModelConfig, OptimizerKind, Params, Real, dense, relu, softmax_xent,
};

/// Every intermediate tensor of one batch: activations from the forward pass and gradients
/// from the backward pass, each a flat row-major buffer (shapes in the field docs, N = batch).
#[derive(Clone, Debug, Default)]
pub struct Activations<T> {
    /// Batch size N.
    pub n: usize,
    /// Labels of the batch.
    pub labels: Vec<usize>,
    /// Input `[N, C, H, W]`.
    pub input: Vec<T>,
    /// conv1 output `[N, F1, H1, W1]`.
    pub conv1: Vec<T>,
    /// relu1 output `[N, F1, H1, W1]`.
    pub relu1: Vec<T>,
    /// conv2 output `[N, F2, H2, W2]`.
    pub conv2: Vec<T>,
    /// Optional ReLU of conv2 `[N, F2, H2, W2]` (empty when the config has none).
    pub relu_c2: Vec<T>,
    /// FC1 output `[N, HIDDEN]`.
    pub fc1: Vec<T>,
    /// relu2 output `[N, HIDDEN]`.
    pub relu2: Vec<T>,
    /// Class scores `[N, CLASSES]`.
    pub scores: Vec<T>,
    /// Softmax probabilities `[N, CLASSES]`.
    pub probs: Vec<T>,
    /// Mean cross-entropy of the batch.
    pub data_loss: T,
    /// The L2 term `0.5·reg·(ΣW_fc1² + ΣW_fc2²)`.
    pub reg_loss: T,
    /// ∂L/∂scores `[N, CLASSES]`.
    pub d_scores: Vec<T>,
    /// ∂L/∂relu2 `[N, HIDDEN]`.
    pub d_relu2: Vec<T>,
    /// ∂L/∂fc1 `[N, HIDDEN]`.
    pub d_fc1: Vec<T>,
    /// ∂L/∂relu_c2 `[N, F2, H2, W2]` (empty when the config has no ReLU after conv2).
    pub d_relu_c2: Vec<T>,
    /// ∂L/∂conv2 `[N, F2, H2, W2]`.
    pub d_conv2: Vec<T>,
    /// ∂L/∂relu1 `[N, F1, H1, W1]`.
    pub d_relu1: Vec<T>,
    /// ∂L/∂conv1 `[N, F1, H1, W1]`.
    pub d_conv1: Vec<T>,
    /// ∂L/∂input `[N, C, H, W]` (only when [`Network::compute_input_grad`] is set).
    pub d_input: Vec<T>,
}

impl<T: Float> Activations<T> {
    /// Total loss: data term plus L2 term.
    pub fn loss(&self) -> T {
        self.data_loss + self.reg_loss
    }

    /// The most probable class of each image.
    pub fn predictions(&self, classes: usize) -> Vec<usize> {
        self.probs.chunks(classes).map(argmax).collect()
    }

    /// Number of images whose most probable class is the label.
    pub fn correct(&self, classes: usize) -> usize {
        self.predictions(classes).iter().zip(&self.labels).filter(|(p, y)| p == y).count()
    }

    fn resize(&mut self, cfg: &ModelConfig, n: usize) {
        let (h1, w1) = cfg.conv1_out();
        let (h2, w2) = cfg.conv2_out();
        let c1 = n * cfg.conv1_filters * h1 * w1;
        let c2 = n * cfg.conv2_filters * h2 * w2;
        let c2r = if cfg.relu_after_conv2 { c2 } else { 0 };
        self.n = n;
        let z = T::ZERO;
        for (buf, len) in [
            (&mut self.conv1, c1),
            (&mut self.relu1, c1),
            (&mut self.conv2, c2),
            (&mut self.relu_c2, c2r),
            (&mut self.fc1, n * cfg.hidden),
            (&mut self.relu2, n * cfg.hidden),
            (&mut self.scores, n * cfg.classes),
            (&mut self.probs, n * cfg.classes),
            (&mut self.d_scores, n * cfg.classes),
            (&mut self.d_relu2, n * cfg.hidden),
            (&mut self.d_fc1, n * cfg.hidden),
            (&mut self.d_relu_c2, c2r),
            (&mut self.d_conv2, c2),
            (&mut self.d_relu1, c1),
            (&mut self.d_conv1, c1),
        ] {
            // Every phase overwrites its whole output and snapshots show only tensors whose phase
            // has run, so a buffer of the right length is not cleared: at batch 128 that would
            // be 50 MB of zeros a step.
            if buf.len() != len {
                buf.clear();
                buf.resize(len, z);
            }
        }
        self.d_input.clear();
        self.data_loss = z;
        self.reg_loss = z;
    }
}

/// Index of the largest value: the predicted class of a row of scores or probabilities.
///
/// Ties go to the **first** maximum, as `numpy.argmax` and `torch.argmax` do, so a prediction
/// here is the one the post's code makes (with the `post` preset the scores are ~1e-12 and
/// ties happen). NaN is never the maximum: it is skipped (an all-NaN row, and an empty one,
/// give 0). Every view and every evaluation uses this one function.
pub fn argmax<T: PartialOrd + Copy>(v: &[T]) -> usize {
    let mut best: Option<usize> = None;
    for (i, x) in v.iter().enumerate() {
        // Only NaN is not comparable with itself.
        let is_number = x.partial_cmp(x).is_some();
        if is_number && best.is_none_or(|b| *x > v[b]) {
            best = Some(i);
        }
    }
    best.unwrap_or(0)
}

/// The post's network with its parameters, optimiser state and the tensors of the current batch.
#[derive(Debug)]
pub struct Network<T: Float> {
    cfg: ModelConfig,
    /// Which convolution implementation runs.
    pub engine: ConvEngine,
    /// Weights and biases.
    pub params: Params<T>,
    /// Gradients of the loss with respect to [`Network::params`] (after the backward phases).
    pub grads: Params<T>,
    /// Momentum buffers; after an update, each holds the change that update made (ΔW).
    pub velocity: Params<T>,
    /// Also compute ∂L/∂input in the conv1 backward phase (for gradient checks and saliency).
    pub compute_input_grad: bool,
    /// Also sum the squares of the new weights and of the gradients in the update phase (see
    /// [`Network::update_squares`]).
    pub measure_update: bool,
    update_squares: Vec<(f64, f64)>,
    acts: Activations<T>,
    phases: Vec<Phase>,
    cursor: usize,
    ws: ConvWorkspace<T>,
}

impl<T: Float> Network<T> {
    /// A fresh network with weights drawn from `seed`.
    pub fn new(cfg: ModelConfig, init: Init, seed: u64, engine: ConvEngine) -> Result<Self, EngineError> {
        cfg.validate()?;
        Self::with_params(cfg, Params::init(&cfg, init, seed), engine)
    }

    /// A network with the given parameters; refused if a tensor's shape does not match `cfg`.
    pub fn with_params(cfg: ModelConfig, params: Params<T>, engine: ConvEngine) -> Result<Self, EngineError> {
        cfg.validate()?;
        if let Some((name, have, want)) = params.shape_mismatch(&cfg) {
            return Err(EngineError::Config(format!("{name} has shape {have:?} but the network needs {want:?}")));
        }
        // `flat()` needs standard layout; arrays built elsewhere may not have it.
        let params = if params.slices_checked() { params } else { params.to_standard_layout() };
        Ok(Self {
            cfg,
            engine,
            grads: Params::zeros(&cfg),
            velocity: Params::zeros(&cfg),
            params,
            compute_input_grad: false,
            measure_update: false,
            update_squares: Vec::new(),
            acts: Activations::default(),
            phases: Phase::sequence(&cfg),
            cursor: 0,
            ws: ConvWorkspace::default(),
        })
    }

    /// The shape of this network.
    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// The phases of one training step, in order.
    pub fn phases(&self) -> &[Phase] {
        &self.phases
    }

    /// The tensors of the current batch.
    pub fn activations(&self) -> &Activations<T> {
        &self.acts
    }

    /// The phase that runs next, or `None` when no batch is loaded or its step is complete.
    pub fn next_phase(&self) -> Option<Phase> {
        if self.acts.n == 0 { None } else { self.phases.get(self.cursor).copied() }
    }

    /// How many phases of the current step have run.
    pub fn phases_done(&self) -> usize {
        self.cursor
    }

    /// After this step's update, with [`Network::measure_update`] set: `(Σp², Σg²)` of each
    /// parameter tensor in [`PARAM_NAMES`](super::PARAM_NAMES) order — the new weights and the
    /// gradient the update used, as [`sum_of_squares`](super::params::sum_of_squares) sums them.
    pub fn update_squares(&self) -> Option<&[(f64, f64)]> {
        (!self.update_squares.is_empty()).then_some(self.update_squares.as_slice())
    }

    /// Loads a batch (pixels `[N, C, H, W]` flattened, and labels) and rewinds to the first phase.
    pub fn load_batch(&mut self, images: &[T], labels: &[usize]) -> Result<(), EngineError> {
        check_batch(&self.cfg, images, labels)?;
        self.acts.resize(&self.cfg, labels.len());
        self.acts.input.clear();
        self.acts.input.extend_from_slice(images);
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

    /// [`Network::step_phase`] that gives up as soon as `stop()` is true inside a long phase
    /// (the naive convolutions check it per image and filter): `Break(phase)` then says the
    /// phase was abandoned and is still the next one. A phase writes only its outputs, so
    /// running it again later gives exactly what running it whole would have.
    /// `Continue(phase)` is a phase that ran.
    pub fn step_phase_unless(
        &mut self,
        hyper: &Hyper,
        progress: &mut dyn FnMut(usize, usize),
        stop: &dyn Fn() -> bool,
    ) -> Option<ControlFlow<Phase, Phase>> {
        let phase = self.next_phase()?;
        if self.run(phase, hyper, progress, stop).is_break() {
            return Some(ControlFlow::Break(phase));
        }
        self.cursor += 1;
        Some(ControlFlow::Continue(phase))
    }

    /// Back to the first phase of the loaded batch (its images and labels kept), to run the
    /// step again: the caller puts back the parameters and momentum it started with.
    pub fn restart_step(&mut self) {
        self.cursor = 0;
        self.update_squares.clear();
    }

    /// Runs every remaining phase of the current step.
    pub fn finish_step(&mut self, hyper: &Hyper, progress: &mut dyn FnMut(usize, usize)) {
        while self.step_phase(hyper, progress).is_some() {}
    }

    /// One whole training step on a batch: forward, backward, update. Returns the batch loss
    /// (computed before the update).
    pub fn train_step(&mut self, images: &[T], labels: &[usize], hyper: &Hyper) -> Result<T, EngineError> {
        self.load_batch(images, labels)?;
        self.finish_step(hyper, &mut |_, _| {});
        Ok(self.acts.loss())
    }

    /// Forward pass only, into `acts` (not the network's own batch tensors), so that evaluating
    /// or inspecting other images leaves the step being shown untouched.
    pub fn forward_into(
        &mut self,
        images: &[T],
        labels: &[usize],
        reg: f32,
        acts: &mut Activations<T>,
    ) -> Result<(), EngineError> {
        check_batch(&self.cfg, images, labels)?;
        acts.resize(&self.cfg, labels.len());
        acts.input.clear();
        acts.input.extend_from_slice(images);
        acts.labels.clear();
        acts.labels.extend_from_slice(labels);
        let hyper = Hyper { lr: 0.0, momentum: 0.0, reg, lr_decay: 1.0, optimizer: OptimizerKind::Sgd };
        for phase in self.phases.clone() {
            if let Phase::Forward(layer) = phase {
                let never = &|| false;
                let _ = forward_layer(
                    &self.cfg,
                    self.engine,
                    &self.params,
                    acts,
                    &mut self.ws,
                    layer,
                    &hyper,
                    &mut |_, _| {},
                    never,
                );
            }
        }
        Ok(())
    }

    fn run(
        &mut self,
        phase: Phase,
        hyper: &Hyper,
        progress: &mut dyn FnMut(usize, usize),
        stop: &dyn Fn() -> bool,
    ) -> ControlFlow<()> {
        match phase {
            Phase::Forward(layer) => forward_layer(
                &self.cfg,
                self.engine,
                &self.params,
                &mut self.acts,
                &mut self.ws,
                layer,
                hyper,
                progress,
                stop,
            ),
            Phase::Backward(layer) => self.backward_layer(layer, hyper, progress, stop),
            Phase::Update => {
                self.update_squares =
                    sgd_update(&mut self.params, &self.grads, &mut self.velocity, hyper, self.measure_update);
                ControlFlow::Continue(())
            }
        }
    }

    fn backward_layer(
        &mut self,
        layer: Layer,
        hyper: &Hyper,
        progress: &mut dyn FnMut(usize, usize),
        stop: &dyn Fn() -> bool,
    ) -> ControlFlow<()> {
        let cfg = self.cfg;
        let a = &mut self.acts;
        let (p, g) = (&self.params, &mut self.grads);
        let n = a.n;
        let reg = <T as Real>::from_f32(hyper.reg);
        match layer {
            Layer::Loss => softmax_xent::backward(cfg.classes, &a.probs, &a.labels, &mut a.d_scores),
            Layer::Fc2 => dense::backward(
                n,
                cfg.hidden,
                cfg.classes,
                &a.relu2,
                flat(&p.fc2_w),
                &a.d_scores,
                reg,
                super::params::flat_mut(&mut g.fc2_w),
                super::params::flat_mut(&mut g.fc2_b),
                Some(&mut a.d_relu2),
            ),
            Layer::Relu2 => relu::backward(&a.fc1, &a.d_relu2, &mut a.d_fc1),
            Layer::Fc1 => {
                let x = if cfg.relu_after_conv2 { &a.relu_c2 } else { &a.conv2 };
                let dx = if cfg.relu_after_conv2 { &mut a.d_relu_c2 } else { &mut a.d_conv2 };
                dense::backward(
                    n,
                    cfg.flat_len(),
                    cfg.hidden,
                    x,
                    flat(&p.fc1_w),
                    &a.d_fc1,
                    reg,
                    super::params::flat_mut(&mut g.fc1_w),
                    super::params::flat_mut(&mut g.fc1_b),
                    Some(dx),
                )
            }
            Layer::ReluConv2 => relu::backward(&a.conv2, &a.d_relu_c2, &mut a.d_conv2),
            Layer::Conv2 => {
                return conv::backward_unless(
                    self.engine,
                    &conv2_shape(&cfg, n),
                    &a.relu1,
                    flat(&p.conv2_w),
                    &a.d_conv2,
                    super::params::flat_mut(&mut g.conv2_w),
                    super::params::flat_mut(&mut g.conv2_b),
                    Some(&mut a.d_relu1),
                    &mut self.ws,
                    progress,
                    stop,
                );
            }
            Layer::Relu1 => relu::backward(&a.conv1, &a.d_relu1, &mut a.d_conv1),
            Layer::Conv1 => {
                let dx = if self.compute_input_grad {
                    a.d_input.resize(a.input.len(), T::ZERO);
                    Some(a.d_input.as_mut_slice())
                } else {
                    None
                };
                return conv::backward_unless(
                    self.engine,
                    &conv1_shape(&cfg, n),
                    &a.input,
                    flat(&p.conv1_w),
                    &a.d_conv1,
                    super::params::flat_mut(&mut g.conv1_w),
                    super::params::flat_mut(&mut g.conv1_b),
                    dx,
                    &mut self.ws,
                    progress,
                    stop,
                );
            }
        }
        ControlFlow::Continue(())
    }
}

/// Shape of conv1 for a batch of `n`.
pub fn conv1_shape(cfg: &ModelConfig, n: usize) -> ConvShape {
    ConvShape {
        n,
        c: cfg.in_channels,
        h: cfg.in_height,
        w: cfg.in_width,
        f: cfg.conv1_filters,
        k: cfg.kernel,
        stride: cfg.stride,
        pad: cfg.pad,
    }
}

/// Shape of conv2 for a batch of `n`.
pub fn conv2_shape(cfg: &ModelConfig, n: usize) -> ConvShape {
    let (h, w) = cfg.conv1_out();
    ConvShape { n, c: cfg.conv1_filters, h, w, f: cfg.conv2_filters, k: cfg.kernel, stride: cfg.stride, pad: cfg.pad }
}

fn check_batch<T>(cfg: &ModelConfig, images: &[T], labels: &[usize]) -> Result<(), EngineError> {
    let per = cfg.in_channels * cfg.in_height * cfg.in_width;
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
    if let Some((i, y)) = labels.iter().enumerate().find(|(_, y)| **y >= cfg.classes) {
        return Err(EngineError::Input(format!("label {y} of image {i} is not below {} classes", cfg.classes)));
    }
    Ok(())
}

fn forward_layer<T: Float>(
    cfg: &ModelConfig,
    engine: ConvEngine,
    p: &Params<T>,
    a: &mut Activations<T>,
    ws: &mut ConvWorkspace<T>,
    layer: Layer,
    hyper: &Hyper,
    progress: &mut dyn FnMut(usize, usize),
    stop: &dyn Fn() -> bool,
) -> ControlFlow<()> {
    let n = a.n;
    match layer {
        Layer::Conv1 => {
            return conv::forward_unless(
                engine,
                &conv1_shape(cfg, n),
                &a.input,
                flat(&p.conv1_w),
                flat(&p.conv1_b),
                &mut a.conv1,
                ws,
                progress,
                stop,
            );
        }
        Layer::Relu1 => relu::forward(&a.conv1, &mut a.relu1),
        Layer::Conv2 => {
            return conv::forward_unless(
                engine,
                &conv2_shape(cfg, n),
                &a.relu1,
                flat(&p.conv2_w),
                flat(&p.conv2_b),
                &mut a.conv2,
                ws,
                progress,
                stop,
            );
        }
        Layer::ReluConv2 => relu::forward(&a.conv2, &mut a.relu_c2),
        Layer::Fc1 => {
            let x = if cfg.relu_after_conv2 { &a.relu_c2 } else { &a.conv2 };
            dense::forward(n, cfg.flat_len(), cfg.hidden, x, flat(&p.fc1_w), flat(&p.fc1_b), &mut a.fc1)
        }
        Layer::Relu2 => relu::forward(&a.fc1, &mut a.relu2),
        Layer::Fc2 => {
            dense::forward(n, cfg.hidden, cfg.classes, &a.relu2, flat(&p.fc2_w), flat(&p.fc2_b), &mut a.scores)
        }
        Layer::Loss => {
            a.data_loss = softmax_xent::forward(cfg.classes, &a.scores, &a.labels, &mut a.probs);
            a.reg_loss = <T as Real>::from_f32(hyper.reg) * p.half_l2_of_dense();
        }
    }
    ControlFlow::Continue(())
}
