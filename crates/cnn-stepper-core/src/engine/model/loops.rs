//! The loops of one phase, one iteration at a time: the post's loop nests (`for n … for f …
//! for h … for w: out[n, f, h, w] = np.sum(x_pad[…] * k[f]) + b[f]`) run on a layer's real
//! tensors, so a student can watch the nest move.
//!
//! - [`LoopCase`]: what a loop needs, taken from a batch at the weights it started with — the
//!   layer's input, its weights and bias, the upstream gradient of a backward part — and the
//!   engine's own result for that part, to compare with ([`build_case`]).
//! - [`LoopCursor`]: the nest over a case. Each call to [`LoopCursor::step`] runs one statement
//!   of the loop body (one output cell of a forward pass; the `db` line, then the `dW` line of a
//!   backward one) and returns what it did as an [`Iteration`]: the indices, the line, the
//!   patch, the kernel, their products and sums, the cells written.
//!
//! The arithmetic mirrors the naive engine (`engine::conv`'s `naive_forward`/`naive_backward`
//! and the layers' plain loops), in the same order: a convolution stepped to its end gives the
//! naive engine's map bit for bit, and the fast engine's to f32 rounding. Fully connected
//! layers are the post's loops here but a matrix product in the engine (equal to rounding).

use crate::engine::{ConvEngine, EngineError, Hyper};

use super::sequential::{Phase, Sequential};
use super::shape::{Plan, PlannedLayer, Shape};
use super::spec::LayerSpec;

/// Which part of a layer's work a loop computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LoopPart {
    /// The forward pass: the layer's output from its input.
    Forward,
    /// The backward pass's parameter gradients, `dW` and `db` (conv and fc).
    BackwardParams,
    /// The backward pass's input gradient `dX` (every layer but the first).
    BackwardInput,
    /// The softmax of the scores and the mean cross-entropy (the loss phase); asked of the last
    /// layer, whose output the scores are.
    LossForward,
    /// The loss's gradient with respect to the scores, `dscores` (the loss backward phase);
    /// asked of the last layer.
    LossBackward,
}

impl LoopPart {
    /// Every part, in the order a picker lists them.
    pub const ALL: [LoopPart; 5] = [
        LoopPart::Forward,
        LoopPart::BackwardParams,
        LoopPart::BackwardInput,
        LoopPart::LossForward,
        LoopPart::LossBackward,
    ];

    /// A short label: `forward`, `backward dW & db`, `backward dX`, `loss forward`, `loss
    /// backward`.
    pub fn label(self) -> &'static str {
        match self {
            LoopPart::Forward => "forward",
            LoopPart::BackwardParams => "backward dW & db",
            LoopPart::BackwardInput => "backward dX",
            LoopPart::LossForward => "loss forward",
            LoopPart::LossBackward => "loss backward",
        }
    }

    /// True for the loss's two parts, which belong to the scores rather than to a layer.
    pub fn is_loss(self) -> bool {
        matches!(self, LoopPart::LossForward | LoopPart::LossBackward)
    }

    /// The phase of a training step that computes this part of layer `layer`.
    pub fn phase(self, layer: usize) -> Phase {
        match self {
            LoopPart::Forward => Phase::Forward(layer),
            LoopPart::BackwardParams | LoopPart::BackwardInput => Phase::Backward(layer),
            LoopPart::LossForward => Phase::Loss,
            LoopPart::LossBackward => Phase::LossBackward,
        }
    }
}

/// Why layer `layer` of `plan` has no loop for `part`, in words a student understands, or
/// `Ok` if it has one.
pub fn check_part(plan: &Plan, layer: usize, part: LoopPart) -> Result<(), String> {
    let Some(l) = plan.layers.get(layer) else {
        let names: Vec<&str> = plan.layers.iter().map(|l| l.name.as_str()).collect();
        return Err(format!("there is no layer {layer}: the network has {} ({})", names.len(), names.join(", ")));
    };
    if parts_of(plan, layer).contains(&part) {
        return Ok(());
    }
    let has: Vec<&str> = parts_of(plan, layer).iter().map(|p| p.label()).collect();
    let why = match (l.spec, part) {
        (_, LoopPart::LossForward | LoopPart::LossBackward) => {
            let last = plan.layers.last().map_or("the last layer", |l| l.name.as_str());
            format!("the loss reads the scores, the output of the last layer ({last}), not {}'s", l.name)
        }
        (LayerSpec::Flatten, _) => "flatten only reads the same numbers as one vector, it has no loop".to_string(),
        (_, LoopPart::BackwardParams) => format!("{} has no weights, so no dW or db", l.name),
        (_, LoopPart::BackwardInput) => {
            format!(
                "{} is the first layer: nothing comes before it, so the training step never computes its dX",
                l.name
            )
        }
        _ => format!("{} has no {} loop", l.name, part.label()),
    };
    if has.is_empty() { Err(why) } else { Err(format!("{why} (it has: {})", has.join(", "))) }
}

/// The parts layer `layer` of `plan` has a loop for: forward for every layer but flatten,
/// `dW & db` for conv and fc, `dX` for every layer but the first (the training step never
/// computes the input's gradient); the last layer also carries the loss's two parts (its
/// output is the scores).
pub fn parts_of(plan: &Plan, layer: usize) -> Vec<LoopPart> {
    let Some(l) = plan.layers.get(layer) else { return Vec::new() };
    let mut parts = Vec::new();
    if l.spec != LayerSpec::Flatten {
        parts.push(LoopPart::Forward);
        if matches!(l.spec, LayerSpec::Conv { .. } | LayerSpec::Fc { .. }) {
            parts.push(LoopPart::BackwardParams);
        }
        if layer > 0 {
            parts.push(LoopPart::BackwardInput);
        }
    }
    if layer + 1 == plan.layers.len() {
        parts.extend([LoopPart::LossForward, LoopPart::LossBackward]);
    }
    parts
}

/// One tensor a loop writes.
#[derive(Clone, Debug, PartialEq)]
pub struct LoopOutput {
    /// Its name in the code: `out`, `dW`, `db`, `dx`.
    pub name: &'static str,
    /// Its shape: `[N, F, OH, OW]`, `[F, C, K, K]`, `[F]`, `[N, OUT]`, …
    pub shape: Vec<usize>,
}

/// What a loop needs, from the batch in progress at the weights it started with, and the
/// engine's own result for the part ([`build_case`]).
#[derive(Clone, Debug, PartialEq)]
pub struct LoopCase {
    /// The training step of the batch (1-based: the step it is part of).
    pub step: u64,
    /// The layer's position in the line.
    pub layer: usize,
    /// Its student name (`conv1`).
    pub layer_name: String,
    /// The layer.
    pub spec: LayerSpec,
    /// The part the loop computes.
    pub part: LoopPart,
    /// The engine the phase ran on (the loops are always the naive arithmetic).
    pub engine: ConvEngine,
    /// Images in the batch.
    pub n: usize,
    /// One image's input, `(C, H, W)`; a vector of `L` values is `(L, 1, 1)`.
    pub input: (usize, usize, usize),
    /// The maps an fc's input vector was flattened from, `(C, H, W)`, for showing it as maps;
    /// `None` when it was a vector already.
    pub input_maps: Option<(usize, usize, usize)>,
    /// One image's output, as `input`.
    pub output: (usize, usize, usize),
    /// The layer's input `[N, C, H, W]`.
    pub x: Vec<f32>,
    /// The layer's output `[N, …]` (activation backward reads it; the forward part's result);
    /// for the loss's parts, the softmax probabilities `[N, K]`.
    pub y: Vec<f32>,
    /// The batch's labels (the loss's parts read them).
    pub labels: Vec<usize>,
    /// The weights (`[F, C, K, K]` or `[OUT, IN]`); empty for layers without.
    pub weight: Vec<f32>,
    /// The bias; empty for layers without.
    pub bias: Vec<f32>,
    /// The gradient arriving from above, shaped as `y` (backward parts; empty for forward).
    pub dy: Vec<f32>,
    /// The L2 strength the fc weight gradient adds (`reg·W`).
    pub reg: f32,
    /// The tensors the loop writes.
    pub outputs: Vec<LoopOutput>,
    /// The engine's result for each of `outputs`.
    pub expected: Vec<Vec<f32>>,
}

impl LoopCase {
    /// Channel `c` of image `n` of the input, `H × W` (empty if out of range).
    pub fn input_plane(&self, n: usize, c: usize) -> &[f32] {
        let (ci, h, w) = self.input;
        if c >= ci {
            return &[];
        }
        let at = (n * ci + c) * h * w;
        self.x.get(at..at + h * w).unwrap_or(&[])
    }

    /// Its name in the picker and headings: `conv1 forward`, `loss backward`.
    pub fn title(&self) -> String {
        if self.part.is_loss() {
            self.part.label().to_string()
        } else {
            format!("{} {}", self.layer_name, self.part.label())
        }
    }

    /// A code listing and loop nest for this case.
    pub fn nest(&self) -> Nest {
        nest_of(self)
    }
}

/// Builds the case of `part` of layer `layer`: a scratch copy of the network with the
/// parameters `params` (in [`Sequential::params`] order; the batch's starting weights) runs the
/// batch `images`, `labels` on `engine` up to that part's phase, and the layer's tensors are
/// copied out. `step` is stored as the batch's step.
pub fn build_case(
    plan: &Plan,
    params: &[Vec<f32>],
    images: &[f32],
    labels: &[usize],
    hyper: &Hyper,
    engine: ConvEngine,
    layer: usize,
    part: LoopPart,
    step: u64,
) -> Result<LoopCase, EngineError> {
    check_part(plan, layer, part).map_err(EngineError::Config)?;
    let mut net = Sequential::<f32>::zeros(plan.clone(), engine);
    let names: Vec<String> = net.params().iter().map(|p| p.name.clone()).collect();
    if names.len() != params.len() {
        return Err(EngineError::Config("the saved weights are not this network's".into()));
    }
    for (name, values) in names.iter().zip(params) {
        net.set_param(name, values)?;
    }
    net.load_batch(images, labels)?;
    let target = part.phase(layer);
    loop {
        match net.step_phase(hyper, &mut |_, _| {}) {
            Some(p) if p == target => break,
            Some(_) => {}
            None => return Err(EngineError::Config(format!("the step has no phase {target:?}"))),
        }
    }
    let l = &plan.layers[layer];
    let t = net.tensors();
    let x = if layer == 0 { t.input() } else { t.output(layer - 1) }.to_vec();
    let y = t.output(layer).to_vec();
    let (weight, bias) = match net.weight_index(layer) {
        Some(wi) if !part.is_loss() => (net.params()[wi].data.clone(), net.params()[wi + 1].data.clone()),
        _ => (Vec::new(), Vec::new()),
    };
    let dy = if matches!(part, LoopPart::Forward | LoopPart::LossForward | LoopPart::LossBackward) {
        Vec::new()
    } else {
        t.output_grad(layer).to_vec()
    };
    let n = t.n;
    let (mut input, mut output) = (dims(l.input), dims(l.output));
    let (x, y) = if part.is_loss() {
        // The loss reads the scores (this layer's output) and writes the probabilities.
        (input, output) = ((plan.classes, 1, 1), (plan.classes, 1, 1));
        (y, t.probs.clone())
    } else {
        (x, y)
    };
    let (outputs, expected) = match part {
        LoopPart::LossForward => (
            vec![
                LoopOutput { name: "probs", shape: vec![n, plan.classes] },
                LoopOutput { name: "loss", shape: vec![1] },
            ],
            vec![t.probs.clone(), vec![t.data_loss]],
        ),
        LoopPart::LossBackward => {
            (vec![LoopOutput { name: "dscores", shape: vec![n, plan.classes] }], vec![t.output_grad(layer).to_vec()])
        }
        LoopPart::Forward => {
            let mut shape = vec![n];
            shape.extend(shape_of(l.output));
            (vec![LoopOutput { name: "out", shape }], vec![y.clone()])
        }
        LoopPart::BackwardParams => {
            let wi =
                net.weight_index(layer).ok_or_else(|| EngineError::Config(format!("{} has no weights", l.name)))?;
            let ws = net.params()[wi].shape.clone();
            let bs = net.params()[wi + 1].shape.clone();
            (
                vec![LoopOutput { name: "dW", shape: ws }, LoopOutput { name: "db", shape: bs }],
                vec![net.grad(wi).to_vec(), net.grad(wi + 1).to_vec()],
            )
        }
        LoopPart::BackwardInput => {
            let mut shape = vec![n];
            shape.extend(shape_of(l.input));
            (vec![LoopOutput { name: "dx", shape }], vec![t.output_grad(layer - 1).to_vec()])
        }
    };
    let input_maps = match l.input {
        _ if part.is_loss() => None,
        Shape::Flat(_) => flattened_from(plan, layer),
        Shape::Maps { .. } => None,
    };
    Ok(LoopCase {
        step,
        layer,
        layer_name: l.name.clone(),
        spec: l.spec,
        part,
        engine,
        n,
        input,
        input_maps,
        output,
        x,
        y,
        labels: t.labels.clone(),
        weight,
        bias,
        dy,
        reg: hyper.reg,
        outputs,
        expected,
    })
}

/// The maps a `flatten` right before layer `layer` (maybe with activations between) turned
/// into its input vector.
fn flattened_from(plan: &Plan, layer: usize) -> Option<(usize, usize, usize)> {
    let before = plan.layers.get(layer.checked_sub(1)?)?;
    (before.spec == LayerSpec::Flatten).then(|| dims(before.input)).filter(|(_, h, w)| h * w > 1)
}

fn dims(s: Shape) -> (usize, usize, usize) {
    match s {
        Shape::Maps { c, h, w } => (c, h, w),
        Shape::Flat(len) => (len, 1, 1),
    }
}

fn shape_of(s: Shape) -> Vec<usize> {
    match s {
        Shape::Maps { c, h, w } => vec![c, h, w],
        Shape::Flat(len) => vec![len],
    }
}

/// One loop of a nest: its variable and how many values it takes (`for h in range(H_out)`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoopVar {
    /// The variable: `n`, `f`, `h`, `w`, `c`, `o`, `i`.
    pub name: &'static str,
    /// It runs over `0..range`.
    pub range: usize,
}

/// One line of a loop's code, in the post's numpy notation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeLine {
    /// The line, indented as code.
    pub text: String,
    /// Where the post's own code differs: its line, and one sentence on what goes wrong if it
    /// is run as written.
    pub post: Option<PostLine>,
}

/// The post's version of a line and what goes wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostLine {
    /// The post's line.
    pub text: String,
    /// What goes wrong if it is run as written.
    pub why: String,
}

/// A part's loop nest: the loops (outermost first), the code, and which line each statement of
/// the body is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nest {
    /// The loops, outermost first.
    pub vars: Vec<LoopVar>,
    /// The code: lines before the loops (the outputs' starting values), the `for` lines, the
    /// body.
    pub code: Vec<CodeLine>,
    /// For each statement of the body, in order, its line in `code`.
    pub body: Vec<usize>,
}

impl Nest {
    /// Iterations of the whole nest (cells × statements of the body).
    pub fn total(&self) -> u64 {
        self.vars.iter().map(|v| v.range as u64).product::<u64>() * self.body.len() as u64
    }

    /// Statements in one run of the innermost loop.
    pub fn inner_len(&self) -> u64 {
        self.vars.last().map_or(1, |v| v.range as u64) * self.body.len() as u64
    }

    /// The loop indices (outermost first) and the body statement of iteration `at`.
    pub fn indices(&self, at: u64) -> (Vec<usize>, usize) {
        let body = self.body.len().max(1) as u64;
        let statement = (at % body) as usize;
        let mut cell = at / body;
        let mut idx = vec![0; self.vars.len()];
        for (k, v) in self.vars.iter().enumerate().rev() {
            let r = v.range.max(1) as u64;
            idx[k] = (cell % r) as usize;
            cell /= r;
        }
        (idx, statement)
    }
}

fn line(text: impl Into<String>) -> CodeLine {
    CodeLine { text: text.into(), post: None }
}

fn post_line(text: impl Into<String>, post: &str, why: &str) -> CodeLine {
    CodeLine { text: text.into(), post: Some(PostLine { text: post.into(), why: why.into() }) }
}

/// The `for` lines of `vars`, each indented one more, starting at `indent` levels.
fn for_lines(vars: &[(&'static str, &str)], indent: usize) -> Vec<CodeLine> {
    vars.iter()
        .enumerate()
        .map(|(k, (v, range))| line(format!("{}for {v} in range({range}):", "    ".repeat(indent + k))))
        .collect()
}

fn nest_of(case: &LoopCase) -> Nest {
    if case.part.is_loss() {
        return loss_nest(case);
    }
    let (n, (c, h, w), (oc, oh, ow)) = (case.n, case.input, case.output);
    let body_indent = |loops: usize| "    ".repeat(loops);
    let mut code = Vec::new();
    let (vars, body): (Vec<LoopVar>, Vec<CodeLine>) = match (case.spec, case.part) {
        (LayerSpec::Conv { filters, stride, .. }, part) => {
            let s = if stride == 1 { String::new() } else { "*S".to_string() };
            let patch = format!("x_pad[n, :, h{s}:h{s}+HH, w{s}:w{s}+WW]");
            let vars = vec![
                LoopVar { name: "n", range: n },
                LoopVar { name: "f", range: filters },
                LoopVar { name: "h", range: oh },
                LoopVar { name: "w", range: ow },
            ];
            let ind = body_indent(4);
            let body = match part {
                LoopPart::Forward => {
                    let ours = format!("{ind}out[n, f, h, w] = np.sum({patch} * k[f]) + b[f]");
                    if c > 1 {
                        vec![post_line(
                            ours,
                            &format!(
                                "{ind}out[n, f, h, w] = np.sum({patch} * k[f]) + b[f]   # k built ({filters}, 1, HH, WW)"
                            ),
                            &format!(
                                "the post builds these filters with 1 input channel instead of {c}: numpy broadcasts \
                                 that one kernel over all {c} channels, so the layer has {c} times fewer weights and \
                                 cannot weigh its channels differently"
                            ),
                        )]
                    } else {
                        vec![line(ours)]
                    }
                }
                LoopPart::BackwardParams => {
                    code.push(line("dW = np.zeros_like(k)"));
                    code.push(line("db = np.zeros_like(b)"));
                    vec![
                        line(format!("{ind}db[f] += dout[n, f, h, w]")),
                        line(format!("{ind}dW[f] += {patch} * dout[n, f, h, w]")),
                    ]
                }
                // BackwardInput (the loss's parts have their own nest).
                _ => {
                    code.push(line("dx_pad = np.zeros_like(x_pad)"));
                    vec![post_line(
                        format!("{ind}dx_pad[n, :, h{s}:h{s}+HH, w{s}:w{s}+WW] += k[f] * dout[n, f, h, w]"),
                        "(no such line: the post's conv backward returns only dW and db)",
                        "without dX no gradient reaches the layers below, so in the post conv1 never learns and \
                         keeps its random filters",
                    )]
                }
            };
            (vars, body)
        }
        (LayerSpec::MaxPool { .. } | LayerSpec::AvgPool { .. }, part) => {
            let max = matches!(case.spec, LayerSpec::MaxPool { .. });
            let vars = vec![
                LoopVar { name: "n", range: n },
                LoopVar { name: "c", range: c },
                LoopVar { name: "h", range: oh },
                LoopVar { name: "w", range: ow },
            ];
            let win = "x[n, c, h*S:h*S+K, w*S:w*S+K]";
            let ind = body_indent(4);
            let body = match (part, max) {
                (LoopPart::Forward, true) => vec![line(format!("{ind}out[n, c, h, w] = np.max({win})"))],
                (LoopPart::Forward, false) => vec![line(format!("{ind}out[n, c, h, w] = np.mean({win})"))],
                (_, true) => {
                    code.push(line("dx = np.zeros_like(x)"));
                    vec![line(format!("{ind}dx[n, c, h*S:h*S+K, w*S:w*S+K][argmax({win})] += dout[n, c, h, w]"))]
                }
                (_, false) => {
                    code.push(line("dx = np.zeros_like(x)"));
                    vec![line(format!("{ind}dx[n, c, h*S:h*S+K, w*S:w*S+K] += dout[n, c, h, w] / (K*K)"))]
                }
            };
            (vars, body)
        }
        (LayerSpec::Fc { out }, part) => {
            let vars = vec![LoopVar { name: "n", range: n }, LoopVar { name: "o", range: out }];
            let ind = body_indent(2);
            let body = match part {
                LoopPart::Forward => vec![line(format!("{ind}out[n, o] = np.sum(x[n] * W[o]) + b[o]"))],
                LoopPart::BackwardParams => {
                    code.push(post_line(
                        "dW = reg * W",
                        "dW = np.zeros_like(W)",
                        "the post's loss adds 0.5·reg·ΣW² but its dW leaves out reg·W, so the step is not the \
                         loss's gradient and the weights are never pulled toward 0 as the loss says",
                    ));
                    code.push(line("db = np.zeros_like(b)"));
                    vec![line(format!("{ind}db[o] += dout[n, o]")), line(format!("{ind}dW[o] += dout[n, o] * x[n]"))]
                }
                // BackwardInput (the loss's parts have their own nest).
                _ => {
                    code.push(line("dx = np.zeros_like(x)"));
                    vec![line(format!("{ind}dx[n] += dout[n, o] * W[o]"))]
                }
            };
            (vars, body)
        }
        (act @ (LayerSpec::Relu | LayerSpec::Tanh | LayerSpec::Sigmoid), part) => {
            let vars = vec![LoopVar { name: "n", range: n }, LoopVar { name: "i", range: c * h * w }];
            let ind = body_indent(2);
            let body = match (part, act) {
                (LoopPart::Forward, LayerSpec::Relu) => vec![line(format!("{ind}out[n, i] = max(0, x[n, i])"))],
                (LoopPart::Forward, LayerSpec::Tanh) => vec![line(format!("{ind}out[n, i] = np.tanh(x[n, i])"))],
                (LoopPart::Forward, _) => vec![line(format!("{ind}out[n, i] = 1 / (1 + np.exp(-x[n, i]))"))],
                (_, LayerSpec::Relu) => vec![post_line(
                    format!("{ind}dx[n, i] = dout[n, i] * (x[n, i] > 0)"),
                    &format!("{ind}dx[n, i] = out[n, i] * (x[n, i] > 0)   # starts from the activations"),
                    "the post starts this gradient from the layer's own activations instead of the gradient \
                     arriving from above, so everything below learns from numbers that say nothing about the error",
                )],
                (_, LayerSpec::Tanh) => vec![line(format!("{ind}dx[n, i] = dout[n, i] * (1 - out[n, i]**2)"))],
                _ => vec![line(format!("{ind}dx[n, i] = dout[n, i] * out[n, i] * (1 - out[n, i])"))],
            };
            (vars, body)
        }
        (LayerSpec::Flatten, _) => (Vec::new(), Vec::new()),
    };
    let names: Vec<(&'static str, String)> = vars
        .iter()
        .map(|v| {
            let range = match v.name {
                "n" => "N",
                "f" => "F",
                "c" => "C",
                "h" => "H_out",
                "w" => "W_out",
                "o" => "OUT",
                _ => "D",
            };
            (v.name, range.to_string())
        })
        .collect();
    let refs: Vec<(&'static str, &str)> = names.iter().map(|(a, b)| (*a, b.as_str())).collect();
    code.extend(for_lines(&refs, 0));
    let first_body = code.len();
    let count = body.len();
    code.extend(body);
    let _ = oc;
    Nest { vars, code, body: (first_body..first_body + count).collect() }
}

/// How a statement changes one value of an output.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Write {
    /// `tensor[index] = value`.
    Set {
        /// Which of the case's outputs.
        tensor: usize,
        /// Flat index in it.
        index: usize,
        /// The value written.
        value: f32,
    },
    /// `tensor[index] += value`.
    Add {
        /// Which of the case's outputs.
        tensor: usize,
        /// Flat index in it.
        index: usize,
        /// The value added.
        value: f32,
    },
}

/// Where a statement reads its window of the input: image `n`, the window's top-left corner
/// (negative inside the padding) and side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Image.
    pub n: usize,
    /// The channel, for a pool (a conv reads every channel).
    pub channel: Option<usize>,
    /// Top row (negative: in the padding).
    pub row: isize,
    /// Left column.
    pub col: isize,
    /// Side.
    pub size: usize,
}

/// What one statement of the body did.
#[derive(Clone, Debug, PartialEq)]
pub struct Iteration {
    /// Its number, from 0.
    pub at: u64,
    /// The loop indices, outermost first.
    pub indices: Vec<usize>,
    /// Its line in [`Nest::code`].
    pub line: usize,
    /// Where in the input it reads a window, if it does.
    pub window: Option<Window>,
    /// The shape `(channels, rows, cols)` of `a`, `b` and `products`.
    pub shape: (usize, usize, usize),
    /// The first operand (a patch of the input, or of the weights); `None` in the padding.
    pub a: Vec<Option<f32>>,
    /// How the code names it: `x_pad[3, :, 0:5, 2:7]`.
    pub a_name: String,
    /// The second operand, as `a` or one value (a scalar multiplying every element); empty
    /// when there is none (pools, activations).
    pub b: Vec<f32>,
    /// How the code names it: `k[4]`, `dout[3, 4, 0, 2]`.
    pub b_name: String,
    /// `a · b` element by element (`None` in the padding); empty when there is no `b`. The
    /// loss's statements put the values they compute from `a` here (`e = np.exp(…)`).
    pub products: Vec<Option<f32>>,
    /// How the code names `products`; empty: they are `a · b`'s products.
    pub products_name: String,
    /// Σ of the products per channel.
    pub partial_sums: Vec<f32>,
    /// The value a sum starts from (the bias), if the statement sums.
    pub start: Option<f32>,
    /// The value written to the one cell a statement sets or adds to; `None` when it writes a
    /// whole patch.
    pub result: Option<f32>,
    /// Where in the window the max was (max pool), as `row·size + col`.
    pub winner: Option<usize>,
    /// The cell(s) written, as the code names them: `out[3, 4, 0, 2]`.
    pub target: String,
    /// The statement's arithmetic in numbers where `target = start + Σ products` does not say
    /// it (the loss's statements), e.g. `dscores[0, 7] = (0.0831 − 1) / 4 = −0.229`.
    pub note: Option<String>,
    /// What it wrote, in order.
    pub writes: Vec<Write>,
}

/// The tanh the engine computes (in f64, rounded).
fn tanh32(x: f32) -> f32 {
    f64::from(x).tanh() as f32
}

/// The logistic function as the engine computes it.
fn sigmoid32(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// Computes iteration `at` of `case`'s nest. `outputs` are the values written so far (a max
/// pool's backward does not read them; nothing else does either: every statement only writes).
fn iteration(case: &LoopCase, nest: &Nest, at: u64) -> Iteration {
    let (idx, statement) = nest.indices(at);
    let line = nest.body.get(statement).copied().unwrap_or(0);
    let (ci, h, w) = case.input;
    let (oc, oh, ow) = case.output;
    let mut it = Iteration {
        at,
        indices: idx.clone(),
        line,
        window: None,
        shape: (1, 1, 1),
        a: Vec::new(),
        a_name: String::new(),
        b: Vec::new(),
        b_name: String::new(),
        products: Vec::new(),
        products_name: String::new(),
        partial_sums: Vec::new(),
        start: None,
        result: None,
        winner: None,
        target: String::new(),
        note: None,
        writes: Vec::new(),
    };
    if case.part.is_loss() {
        loss_iteration(case, &idx, statement, &mut it);
        return it;
    }
    match case.spec {
        LayerSpec::Conv { filters, k, stride, pad } => {
            let (n, f, i, j) = (idx[0], idx[1], idx[2], idx[3]);
            let row = (i * stride) as isize - pad as isize;
            let col = (j * stride) as isize - pad as isize;
            it.window = Some(Window { n, channel: None, row, col, size: k });
            it.shape = (ci, k, k);
            let src = |o: usize, d: usize, size: usize| (o * stride + d).checked_sub(pad).filter(|&v| v < size);
            let out_at = ((n * filters + f) * oh + i) * ow + j;
            let g = case.dy.get(out_at).copied().unwrap_or(0.0);
            let ps = |r: usize| (r * stride, r * stride + k);
            let (r0, r1) = ps(i);
            let (c0, c1) = ps(j);
            let patch_name = format!("x_pad[{n}, :, {r0}:{r1}, {c0}:{c1}]");
            let mut patch = Vec::with_capacity(ci * k * k);
            for c in 0..ci {
                for di in 0..k {
                    for dj in 0..k {
                        patch.push(match (src(i, di, h), src(j, dj, w)) {
                            (Some(y), Some(xx)) => Some(case.x[((n * ci + c) * h + y) * w + xx]),
                            _ => None,
                        });
                    }
                }
            }
            let kernel = case.weight[f * ci * k * k..(f + 1) * ci * k * k].to_vec();
            match (case.part, statement) {
                (LoopPart::Forward, _) => {
                    let mut sum = case.bias[f];
                    it.start = Some(sum);
                    it.products = patch.iter().zip(&kernel).map(|(a, b)| a.map(|a| a * b)).collect();
                    for p in it.products.iter().flatten() {
                        sum += *p;
                    }
                    it.partial_sums = channel_sums(&it.products, ci);
                    it.result = Some(sum);
                    it.target = format!("out[{n}, {f}, {i}, {j}]");
                    it.writes.push(Write::Set { tensor: 0, index: out_at, value: sum });
                    (it.a, it.a_name, it.b, it.b_name) = (patch, patch_name, kernel, format!("k[{f}]"));
                }
                (LoopPart::BackwardParams, 0) => {
                    it.a = vec![Some(g)];
                    it.a_name = format!("dout[{n}, {f}, {i}, {j}]");
                    it.result = Some(g);
                    it.target = format!("db[{f}]");
                    it.writes.push(Write::Add { tensor: 1, index: f, value: g });
                    it.window = None;
                }
                (LoopPart::BackwardParams, _) => {
                    it.products = patch.iter().map(|a| a.map(|a| g * a)).collect();
                    it.partial_sums = channel_sums(&it.products, ci);
                    for (t, p) in it.products.iter().enumerate() {
                        if let Some(p) = p {
                            it.writes.push(Write::Add { tensor: 0, index: f * ci * k * k + t, value: *p });
                        }
                    }
                    it.target = format!("dW[{f}]");
                    (it.a, it.a_name, it.b, it.b_name) =
                        (patch, patch_name, vec![g], format!("dout[{n}, {f}, {i}, {j}]"));
                }
                // BackwardInput (the loss's parts have their own iteration).
                _ => {
                    it.products = patch.iter().zip(&kernel).map(|(a, wv)| a.map(|_| g * wv)).collect();
                    it.partial_sums = channel_sums(&it.products, ci);
                    for c in 0..ci {
                        for di in 0..k {
                            for dj in 0..k {
                                if let (Some(y), Some(xx)) = (src(i, di, h), src(j, dj, w)) {
                                    let t = (c * k + di) * k + dj;
                                    let value = g * kernel[t];
                                    it.writes.push(Write::Add {
                                        tensor: 0,
                                        index: ((n * ci + c) * h + y) * w + xx,
                                        value,
                                    });
                                }
                            }
                        }
                    }
                    it.target = format!("dx_pad[{n}, :, {r0}:{r1}, {c0}:{c1}]");
                    let k_opt = kernel.into_iter().map(Some).collect();
                    (it.a, it.a_name, it.b, it.b_name) =
                        (k_opt, format!("k[{f}]"), vec![g], format!("dout[{n}, {f}, {i}, {j}]"));
                }
            }
        }
        LayerSpec::MaxPool { k, stride } | LayerSpec::AvgPool { k, stride } => {
            let (n, c, i, j) = (idx[0], idx[1], idx[2], idx[3]);
            let (r0, c0) = (i * stride, j * stride);
            it.window = Some(Window { n, channel: Some(c), row: r0 as isize, col: c0 as isize, size: k });
            it.shape = (1, k, k);
            let plane = (n * ci + c) * h * w;
            let vals: Vec<f32> = (0..k * k).map(|t| case.x[plane + (r0 + t / k) * w + c0 + t % k]).collect();
            it.a = vals.iter().copied().map(Some).collect();
            it.a_name = format!("x[{n}, {c}, {}:{}, {}:{}]", r0, r0 + k, c0, c0 + k);
            let out_at = ((n * oc + c) * oh + i) * ow + j;
            let max = matches!(case.spec, LayerSpec::MaxPool { .. });
            // The engine's rule: the first maximum in reading order; NaN wins.
            let mut best = 0;
            for (t, v) in vals.iter().enumerate() {
                #[allow(clippy::eq_op)]
                if *v > vals[best] || v != v {
                    best = t;
                }
            }
            let inv = 1.0 / ((k * k) as f32);
            match (case.part, max) {
                (LoopPart::Forward, true) => {
                    it.winner = Some(best);
                    it.result = Some(vals[best]);
                    it.target = format!("out[{n}, {c}, {i}, {j}]");
                    it.writes.push(Write::Set { tensor: 0, index: out_at, value: vals[best] });
                }
                (LoopPart::Forward, false) => {
                    let mut sum = 0.0_f32;
                    for v in &vals {
                        sum += *v;
                    }
                    it.partial_sums = vec![sum];
                    let v = sum * inv;
                    it.result = Some(v);
                    it.target = format!("out[{n}, {c}, {i}, {j}]");
                    it.writes.push(Write::Set { tensor: 0, index: out_at, value: v });
                }
                (_, true) => {
                    let g = case.dy[out_at];
                    it.winner = Some(best);
                    it.b = vec![g];
                    it.b_name = format!("dout[{n}, {c}, {i}, {j}]");
                    it.result = Some(g);
                    let (r, cc) = (r0 + best / k, c0 + best % k);
                    it.target = format!("dx[{n}, {c}, {r}, {cc}]");
                    it.writes.push(Write::Add { tensor: 0, index: plane + r * w + cc, value: g });
                }
                (_, false) => {
                    let g = case.dy[out_at] * inv;
                    it.b = vec![case.dy[out_at]];
                    it.b_name = format!("dout[{n}, {c}, {i}, {j}]");
                    it.result = Some(g);
                    it.target = format!("dx[{n}, {c}, {}:{}, {}:{}]", r0, r0 + k, c0, c0 + k);
                    for t in 0..k * k {
                        it.writes.push(Write::Add {
                            tensor: 0,
                            index: plane + (r0 + t / k) * w + c0 + t % k,
                            value: g,
                        });
                    }
                }
            }
        }
        LayerSpec::Fc { out } => {
            let (n, o) = (idx[0], idx[1]);
            let inputs = ci * h * w;
            let xs = &case.x[n * inputs..(n + 1) * inputs];
            let wrow = &case.weight[o * inputs..(o + 1) * inputs];
            it.shape = match case.input_maps {
                Some(m) => m,
                None => {
                    let side = (inputs as f64).sqrt().ceil().max(1.0) as usize;
                    (1, inputs.div_ceil(side), side)
                }
            };
            let g = case.dy.get(n * out + o).copied().unwrap_or(0.0);
            match (case.part, statement) {
                (LoopPart::Forward, _) => {
                    let mut sum = case.bias[o];
                    it.start = Some(sum);
                    it.products = xs.iter().zip(wrow).map(|(a, b)| Some(a * b)).collect();
                    for p in it.products.iter().flatten() {
                        sum += *p;
                    }
                    it.partial_sums = channel_sums(&it.products, it.shape.0);
                    it.result = Some(sum);
                    it.target = format!("out[{n}, {o}]");
                    it.writes.push(Write::Set { tensor: 0, index: n * out + o, value: sum });
                    (it.a, it.a_name, it.b, it.b_name) =
                        (xs.iter().copied().map(Some).collect(), format!("x[{n}]"), wrow.to_vec(), format!("W[{o}]"));
                }
                (LoopPart::BackwardParams, 0) => {
                    it.a = vec![Some(g)];
                    it.shape = (1, 1, 1);
                    it.a_name = format!("dout[{n}, {o}]");
                    it.result = Some(g);
                    it.target = format!("db[{o}]");
                    it.writes.push(Write::Add { tensor: 1, index: o, value: g });
                }
                (LoopPart::BackwardParams, _) => {
                    it.products = xs.iter().map(|a| Some(g * a)).collect();
                    it.partial_sums = channel_sums(&it.products, it.shape.0);
                    for (t, p) in it.products.iter().enumerate() {
                        if let Some(p) = p {
                            it.writes.push(Write::Add { tensor: 0, index: o * inputs + t, value: *p });
                        }
                    }
                    it.target = format!("dW[{o}]");
                    (it.a, it.a_name, it.b, it.b_name) =
                        (xs.iter().copied().map(Some).collect(), format!("x[{n}]"), vec![g], format!("dout[{n}, {o}]"));
                }
                // BackwardInput (the loss's parts have their own iteration).
                _ => {
                    it.products = wrow.iter().map(|wv| Some(g * wv)).collect();
                    it.partial_sums = channel_sums(&it.products, it.shape.0);
                    for (t, p) in it.products.iter().enumerate() {
                        if let Some(p) = p {
                            it.writes.push(Write::Add { tensor: 0, index: n * inputs + t, value: *p });
                        }
                    }
                    it.target = format!("dx[{n}]");
                    (it.a, it.a_name, it.b, it.b_name) = (
                        wrow.iter().copied().map(Some).collect(),
                        format!("W[{o}]"),
                        vec![g],
                        format!("dout[{n}, {o}]"),
                    );
                }
            }
        }
        LayerSpec::Relu | LayerSpec::Tanh | LayerSpec::Sigmoid => {
            let (n, i) = (idx[0], idx[1]);
            let at = n * ci * h * w + i;
            let x = case.x[at];
            it.a = vec![Some(x)];
            it.a_name = format!("x[{n}, {i}]");
            let v = match (case.part, case.spec) {
                (LoopPart::Forward, LayerSpec::Relu) => {
                    if x > 0.0 {
                        x
                    } else {
                        0.0
                    }
                }
                (LoopPart::Forward, LayerSpec::Tanh) => tanh32(x),
                (LoopPart::Forward, _) => sigmoid32(x),
                (_, spec) => {
                    let (g, y) = (case.dy[at], case.y[at]);
                    it.b = vec![g];
                    it.b_name = format!("dout[{n}, {i}]");
                    match spec {
                        LayerSpec::Relu => {
                            if x > 0.0 {
                                g
                            } else {
                                0.0
                            }
                        }
                        LayerSpec::Tanh => g * (1.0 - y * y),
                        _ => g * y * (1.0 - y),
                    }
                }
            };
            it.result = Some(v);
            let name = if case.part == LoopPart::Forward { "out" } else { "dx" };
            it.target = format!("{name}[{n}, {i}]");
            it.writes.push(Write::Set { tensor: 0, index: at, value: v });
        }
        LayerSpec::Flatten => {}
    }
    it
}

/// Σ of the present values of `products`, per channel of `channels` equal parts.
fn channel_sums(products: &[Option<f32>], channels: usize) -> Vec<f32> {
    let per = products.len().div_ceil(channels.max(1)).max(1);
    products.chunks(per).map(|c| c.iter().flatten().fold(0.0_f32, |s, v| s + v)).collect()
}

/// The loss's nests: the softmax and the mean cross-entropy image by image (three statements
/// per image), or `dscores` cell by cell.
fn loss_nest(case: &LoopCase) -> Nest {
    let n = case.n;
    let classes = case.input.0;
    match case.part {
        LoopPart::LossBackward => {
            let code = vec![
                line("# numpy: dscores = probs.copy(); dscores[range(N), y] -= 1; dscores /= N"),
                line("dscores = np.zeros_like(probs)"),
                line("for n in range(N):"),
                line("    for k in range(K):"),
                post_line(
                    "        dscores[n, k] = (probs[n, k] - (k == y[n])) / N",
                    "dscores[range(N), y] = -1",
                    "the true class's gradient becomes −1/N whatever its probability, so a confident right \
                     answer is pushed as hard as a wrong one, and the probability information is thrown away",
                ),
            ];
            Nest {
                vars: vec![LoopVar { name: "n", range: n }, LoopVar { name: "k", range: classes }],
                code,
                body: vec![4],
            }
        }
        _ => {
            let code = vec![
                line("probs = np.zeros((N, K)); loss = 0"),
                line("for n in range(N):"),
                line("    e = np.exp(scores[n] - np.max(scores[n]))"),
                line("    probs[n] = e / np.sum(e)"),
                line("    loss += -np.log(probs[n, y[n]]) / N"),
            ];
            Nest { vars: vec![LoopVar { name: "n", range: n }], code, body: vec![2, 3, 4] }
        }
    }
}

/// Image `n`'s scores shifted by their max and exponentiated, as the engine computes them
/// (`engine::softmax_xent::forward`): the max, `e` and `Σ e`.
fn softmax_row(scores: &[f32]) -> (f32, Vec<f32>, f32) {
    let max = scores.iter().copied().fold(scores.first().copied().unwrap_or(0.0), |m, v| if v > m { v } else { m });
    let e: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
    let mut sum = 0.0_f32;
    for v in &e {
        sum += *v;
    }
    (max, e, sum)
}

/// A number in 3 significant digits (as the window's `fmt_sig`), for the loss's notes.
fn sig(v: f32) -> String {
    let a = v.abs();
    if v == 0.0 || !v.is_finite() {
        v.to_string()
    } else if (1e-3..1e4).contains(&a) {
        let decimals = (2 - a.log10().floor() as i32).clamp(0, 6) as usize;
        format!("{v:.decimals$}")
    } else {
        format!("{v:.2e}")
    }
}

/// One statement of the loss's nests, with the engine's arithmetic in the engine's order, so
/// the probabilities, the loss and `dscores` end bit for bit at the phase's.
fn loss_iteration(case: &LoopCase, idx: &[usize], statement: usize, it: &mut Iteration) {
    let classes = case.input.0.max(1);
    let n = idx.first().copied().unwrap_or(0);
    let row = |r: usize| case.x.get(r * classes..(r + 1) * classes).unwrap_or(&[]);
    let label = case.labels.get(n).copied().unwrap_or(0);
    it.shape = (1, 1, classes);
    if case.part == LoopPart::LossBackward {
        let k = idx.get(1).copied().unwrap_or(0);
        let p = case.y.get(n * classes + k).copied().unwrap_or(0.0);
        let inv_n = 1.0 / case.n.max(1) as f32;
        let target = if k == label { 1.0 } else { 0.0 };
        let d = (p - target) * inv_n;
        it.a = vec![Some(p)];
        it.shape = (1, 1, 1);
        it.a_name = format!("probs[{n}, {k}]");
        it.result = Some(d);
        it.target = format!("dscores[{n}, {k}]");
        let mut note = format!(
            "k == y[{n}]: {k} == {label} → {target};   dscores[{n}, {k}] = ({} − {target}) / {} = {}",
            sig(p),
            case.n,
            sig(d)
        );
        if k == label {
            note.push_str(&format!(
                "   (the post's line: −1 / {} = {}, whatever the probability)",
                case.n,
                sig(-inv_n)
            ));
        }
        it.note = Some(note);
        it.writes.push(Write::Set { tensor: 0, index: n * classes + k, value: d });
        return;
    }
    let (max, e, sum) = softmax_row(row(n));
    match statement {
        0 => {
            it.a = row(n).iter().copied().map(Some).collect();
            it.a_name = format!("scores[{n}]");
            it.products = e.iter().copied().map(Some).collect();
            it.products_name = format!("e = np.exp(scores[{n}] − {})", sig(max));
            it.partial_sums = vec![sum];
            it.target = "e".into();
            it.note = Some(format!("np.max(scores[{n}]) = {};   np.sum(e) = {}", sig(max), sig(sum)));
        }
        1 => {
            it.a = e.iter().copied().map(Some).collect();
            it.a_name = "e".into();
            let probs: Vec<f32> = e.iter().map(|v| v / sum).collect();
            for (k, p) in probs.iter().enumerate() {
                it.writes.push(Write::Set { tensor: 0, index: n * classes + k, value: *p });
            }
            it.products = probs.into_iter().map(Some).collect();
            it.products_name = format!("probs[{n}] = e / {}", sig(sum));
            it.target = format!("probs[{n}]");
            it.note = Some(format!("probs[{n}] = e / {}: positive, and they add up to 1", sig(sum)));
        }
        _ => {
            // The engine sums −log p[y] image by image from the shifted scores and divides once.
            let mut total = 0.0_f32;
            let mut own = 0.0_f32;
            for r in 0..=n {
                let (m, _, s) = softmax_row(row(r));
                let y = case.labels.get(r).copied().unwrap_or(0);
                own = s.ln() - (row(r).get(y).copied().unwrap_or(0.0) - m);
                total += own;
            }
            let loss = total / case.n.max(1) as f32;
            let p = e.get(label).copied().unwrap_or(0.0) / sum;
            it.a = vec![Some(p)];
            it.shape = (1, 1, 1);
            it.a_name = format!("probs[{n}, {label}]");
            it.result = Some(loss);
            it.target = "loss".into();
            it.note = Some(format!(
                "y[{n}] = {label};   −log probs[{n}, {label}] = −log {} = {};   loss so far = {} (the sum / {})",
                sig(p),
                sig(own),
                sig(loss),
                case.n
            ));
            it.writes.push(Write::Set { tensor: 1, index: 0, value: loss });
        }
    }
}

/// The nest of a [`LoopCase`] being stepped: how far it has run and what it has written.
#[derive(Clone, Debug)]
pub struct LoopCursor {
    nest: Nest,
    at: u64,
    outputs: Vec<Vec<f32>>,
    written: Vec<Vec<bool>>,
    last: Option<Iteration>,
}

impl LoopCursor {
    /// At the start of the nest: the outputs hold the values the lines before the loops give
    /// them (zeros; `reg·W` for an fc's dW), nothing is written yet.
    pub fn new(case: &LoopCase) -> Self {
        let nest = case.nest();
        let mut outputs: Vec<Vec<f32>> = case.outputs.iter().map(|o| vec![0.0; o.shape.iter().product()]).collect();
        if let (LayerSpec::Fc { .. }, LoopPart::BackwardParams) = (case.spec, case.part)
            && let Some(dw) = outputs.first_mut()
        {
            for (d, w) in dw.iter_mut().zip(&case.weight) {
                *d = case.reg * *w;
            }
        }
        let written = outputs.iter().map(|o| vec![false; o.len()]).collect();
        Self { nest, at: 0, outputs, written, last: None }
    }

    /// The nest being stepped.
    pub fn nest(&self) -> &Nest {
        &self.nest
    }

    /// Iterations run so far.
    pub fn position(&self) -> u64 {
        self.at
    }

    /// Iterations in the whole nest.
    pub fn total(&self) -> u64 {
        self.nest.total()
    }

    /// True once every iteration has run.
    pub fn finished(&self) -> bool {
        self.at >= self.total()
    }

    /// The values of each output so far.
    pub fn outputs(&self) -> &[Vec<f32>] {
        &self.outputs
    }

    /// For each output, which values some iteration has written.
    pub fn written(&self) -> &[Vec<bool>] {
        &self.written
    }

    /// The iteration that ran last, if any.
    pub fn last(&self) -> Option<&Iteration> {
        self.last.as_ref()
    }

    /// The iteration that runs next (without running it), or `None` at the end.
    pub fn peek(&self, case: &LoopCase) -> Option<Iteration> {
        (!self.finished()).then(|| iteration(case, &self.nest, self.at))
    }

    /// The loop indices and body statement the next iteration has (the last one's at the end).
    pub fn indices(&self) -> (Vec<usize>, usize) {
        self.nest.indices(self.at.min(self.total().saturating_sub(1)))
    }

    /// Runs one iteration; returns it (`None` at the end).
    pub fn step(&mut self, case: &LoopCase) -> Option<&Iteration> {
        if self.finished() {
            return None;
        }
        let it = iteration(case, &self.nest, self.at);
        for wr in &it.writes {
            match *wr {
                Write::Set { tensor, index, value } => {
                    self.outputs[tensor][index] = value;
                    self.written[tensor][index] = true;
                }
                Write::Add { tensor, index, value } => {
                    self.outputs[tensor][index] += value;
                    self.written[tensor][index] = true;
                }
            }
        }
        self.at += 1;
        self.last = Some(it);
        self.last.as_ref()
    }

    /// Runs up to `k` iterations (fewer at the end); returns how many ran.
    pub fn run(&mut self, case: &LoopCase, k: u64) -> u64 {
        let mut ran = 0;
        while ran < k && self.step(case).is_some() {
            ran += 1;
        }
        ran
    }

    /// Runs to the end of the innermost loop in progress (a whole run of it when at its start).
    pub fn end_of_inner_loop(&mut self, case: &LoopCase) -> u64 {
        let inner = self.nest.inner_len().max(1);
        let to = (self.at / inner + 1) * inner;
        self.run(case, to - self.at)
    }

    /// Runs every remaining iteration.
    pub fn finish(&mut self, case: &LoopCase) -> u64 {
        self.run(case, self.total() - self.at)
    }

    /// The largest |loop − engine| over every output (`None` if a size differs).
    pub fn max_difference(&self, case: &LoopCase) -> Option<f32> {
        let mut worst = 0.0_f32;
        for (a, b) in self.outputs.iter().zip(&case.expected) {
            if a.len() != b.len() {
                return None;
            }
            for (x, y) in a.iter().zip(b) {
                worst = worst.max((x - y).abs());
            }
        }
        Some(worst)
    }
}

/// The student name of a layer and a part, e.g. `conv1 backward dX`; the loss's parts are
/// named alone (`loss backward`), whichever layer's scores they read.
pub fn part_title(layer: &PlannedLayer, part: LoopPart) -> String {
    if part.is_loss() { part.label().to_string() } else { format!("{} {}", layer.name, part.label()) }
}
