//! What each phase of a [`Plan`] computes, in words and as a formula, generated from the layer
//! and its numbers ("conv2: 16×14×14 → 32×14×14, 32 filters of 16×5×5, stride 1, pad 2.").

use super::optim::Optimizer;
use super::sequential::Phase;
use super::shape::{Plan, PlannedLayer, Shape};
use super::spec::LayerSpec;

impl Plan {
    /// The name of tensor `j`: `x` for the input, else the name of the layer that produced it.
    fn tensor_name(&self, j: usize) -> &str {
        if j == 0 { "x" } else { self.layers.get(j - 1).map_or("x", |l| l.name.as_str()) }
    }

    /// A short label such as `forward conv2`, `loss`, `backward pool1` or `update`.
    pub fn phase_label(&self, phase: Phase) -> String {
        let name = |i: usize| self.layers.get(i).map_or("?", |l| l.name.as_str());
        match phase {
            Phase::Forward(i) => format!("forward {}", name(i)),
            Phase::Loss => "loss".into(),
            Phase::LossBackward => "backward loss".into(),
            Phase::Backward(i) => format!("backward {}", name(i)),
            Phase::Update => "update".into(),
        }
    }

    /// One line on what the phase computes, as a formula with the layer's names.
    pub fn phase_formula(&self, phase: Phase, optimizer: Optimizer) -> String {
        let fcs: Vec<&str> = self.layers.iter().filter(|l| l.spec.kind() == "fc").map(|l| l.name.as_str()).collect();
        let scores = self.layers.last().map_or("scores", |l| l.name.as_str());
        match phase {
            Phase::Forward(i) => match self.layers.get(i) {
                Some(l) => forward_formula(l, self.tensor_name(i)),
                None => String::new(),
            },
            Phase::Loss => format!(
                "p = softmax({scores}); L = −mean log p[y] + ½·reg·Σ W² over {}",
                fcs.iter().map(|f| format!("W_{f}")).collect::<Vec<_>>().join(", ")
            ),
            Phase::LossBackward => format!("d{scores} = (p − onehot(y)) / N"),
            Phase::Backward(i) => match self.layers.get(i) {
                Some(l) => backward_formula(l, self.tensor_name(i), i == 0),
                None => String::new(),
            },
            Phase::Update => match optimizer {
                Optimizer::Sgd => "v = μ·v − lr·dW; W = W + v (every parameter)".into(),
                Optimizer::Adam { .. } => {
                    "m = β1·m + (1−β1)·dW; v = β2·v + (1−β2)·dW²; W = W − lr·m̂ / (√v̂ + ε) (every parameter)".into()
                }
            },
        }
    }

    /// One sentence on what the phase does, with the layer's numbers.
    pub fn phase_sentence(&self, phase: Phase, optimizer: Optimizer) -> String {
        match phase {
            Phase::Forward(i) => match self.layers.get(i) {
                Some(l) => forward_sentence(l, self.tensor_name(i)),
                None => String::new(),
            },
            Phase::Loss => format!(
                "loss: turn the {} scores of each image into probabilities; penalise low probability on the true class.",
                self.classes
            ),
            Phase::LossBackward => {
                "backward loss: the gradient of the loss with respect to each score is its probability minus 1 for the true class (0 otherwise), divided by the batch size.".into()
            }
            Phase::Backward(i) => match self.layers.get(i) {
                Some(l) => backward_sentence(l, self.tensor_name(i), i == 0),
                None => String::new(),
            },
            Phase::Update => match optimizer {
                Optimizer::Sgd => format!(
                    "update: each of the {} parameters takes a step against its gradient (plus momentum, if set).",
                    self.total_params()
                ),
                Optimizer::Adam { .. } => format!(
                    "update: each of the {} parameters takes a step against its gradient's running mean, scaled by its running size (Adam).",
                    self.total_params()
                ),
            },
        }
    }
}

fn forward_formula(l: &PlannedLayer, x: &str) -> String {
    let y = l.name.as_str();
    match l.spec {
        LayerSpec::Conv { stride, pad, .. } => {
            let at = |v: char, u: char| {
                let base = if stride == 1 { format!("{v}") } else { format!("{stride}{v}") };
                if pad == 0 { format!("{base}+{u}") } else { format!("{base}+{u}−{pad}") }
            };
            format!("{y}[n,f,i,j] = b[f] + Σc,u,v {x}[n,c,{},{}]·W[f,c,u,v]", at('i', 'u'), at('j', 'v'))
        }
        LayerSpec::MaxPool { k, stride } => {
            format!("{y}[n,c,i,j] = max over u,v < {k} of {x}[n,c,{stride}i+u,{stride}j+v]")
        }
        LayerSpec::AvgPool { k, stride } => {
            format!("{y}[n,c,i,j] = (1/{}) Σu,v<{k} {x}[n,c,{stride}i+u,{stride}j+v]", k * k)
        }
        LayerSpec::Relu => format!("{y} = max(0, {x})"),
        LayerSpec::Tanh => format!("{y} = tanh({x})"),
        LayerSpec::Sigmoid => format!("{y} = 1 / (1 + e^−{x})"),
        LayerSpec::Flatten => format!("{y}[n] = {x}[n] read as one vector of {}", l.output.len()),
        LayerSpec::Fc { .. } => format!("{y} = {x}·Wᵀ + b"),
    }
}

fn backward_formula(l: &PlannedLayer, x: &str, first: bool) -> String {
    let y = l.name.as_str();
    let dx = |s: String| if first { format!("(d{x} only when asked) {s}") } else { s };
    match l.spec {
        LayerSpec::Conv { .. } => {
            let base = format!("dW = Σn d{y} ⋆ {x}; db = Σ d{y}");
            if first { base } else { format!("{base}; d{x} = d{y} ⋆ W (full conv)") }
        }
        LayerSpec::MaxPool { .. } => dx(format!("d{x} = d{y} sent to the winner of each window, 0 elsewhere")),
        LayerSpec::AvgPool { k, .. } => dx(format!("d{x} = d{y} / {} added to every input of each window", k * k)),
        LayerSpec::Relu => dx(format!("d{x} = d{y} ⊙ [{x} > 0]")),
        LayerSpec::Tanh => dx(format!("d{x} = d{y} ⊙ (1 − {y}²)")),
        LayerSpec::Sigmoid => dx(format!("d{x} = d{y} ⊙ {y} ⊙ (1 − {y})")),
        LayerSpec::Flatten => format!("d{x} = d{y} read as {}", l.input),
        LayerSpec::Fc { .. } => {
            let base = format!("dW = d{y}ᵀ·{x} + reg·W; db = Σ d{y}");
            if first { base } else { format!("{base}; d{x} = d{y}·W") }
        }
    }
}

fn maps_of(x: &str, s: Shape) -> String {
    match s {
        Shape::Maps { .. } => format!("{x}'s {s} maps"),
        Shape::Flat(n) => format!("{x}'s {n} values"),
    }
}

fn forward_sentence(l: &PlannedLayer, x: &str) -> String {
    let (y, i, o) = (l.name.as_str(), l.input, l.output);
    match (l.spec, i) {
        (LayerSpec::Conv { filters, k, stride, pad }, Shape::Maps { c, .. }) => {
            format!("{y}: {i} → {o}, {filters} filters of {c}×{k}×{k}, stride {stride}, pad {pad}.")
        }
        (LayerSpec::MaxPool { k, stride }, _) => {
            format!("{y}: {i} → {o}, the largest value of each {k}×{k} window, stride {stride}.")
        }
        (LayerSpec::AvgPool { k, stride }, _) => {
            format!("{y}: {i} → {o}, the mean of each {k}×{k} window, stride {stride}.")
        }
        (LayerSpec::Relu, _) => format!("{y}: zero every negative value of {}.", maps_of(x, i)),
        (LayerSpec::Tanh, _) => format!("{y}: squash each of {} into (−1, 1).", maps_of(x, i)),
        (LayerSpec::Sigmoid, _) => format!("{y}: squash each of {} into (0, 1).", maps_of(x, i)),
        (LayerSpec::Flatten, _) => format!("{y}: {i} maps → one vector of {} values; no arithmetic.", o.len()),
        (LayerSpec::Fc { out }, _) => {
            format!("{y}: {} → {out}, {out} weighted sums of all {} inputs, each plus a bias.", i.len(), i.len())
        }
        (LayerSpec::Conv { .. }, Shape::Flat(_)) => format!("{y}: {i} → {o}."),
    }
}

fn backward_sentence(l: &PlannedLayer, x: &str, first: bool) -> String {
    let y = l.name.as_str();
    let to_input = if first { " (the input's gradient only when asked for)" } else { "" };
    match l.spec {
        LayerSpec::Conv { filters, .. } => {
            let back =
                if first { String::new() } else { format!(", and the gradient sent back to {}", maps_of(x, l.input)) };
            format!(
                "{y}: each of the {filters} filters' gradients: the input patches weighted by their pixel gradients{back}."
            )
        }
        LayerSpec::MaxPool { .. } => {
            format!("{y}: each window's gradient goes to the input that won it; the others get 0{to_input}.")
        }
        LayerSpec::AvgPool { k, .. } => {
            format!("{y}: each window's gradient is shared equally by its {} inputs{to_input}.", k * k)
        }
        LayerSpec::Relu => format!("{y}: gradients pass only where {x} was positive{to_input}."),
        LayerSpec::Tanh => format!("{y}: gradients shrink by 1 − {y}², most where {y} is near ±1{to_input}."),
        LayerSpec::Sigmoid => format!("{y}: gradients shrink by {y}·(1 − {y}), at most ¼{to_input}."),
        LayerSpec::Flatten => format!("{y}: the gradient vector is read back as {} maps; no arithmetic.", l.input),
        LayerSpec::Fc { out } => {
            let back = if first {
                String::new()
            } else {
                format!(", and the gradient of each of its {} inputs", l.input.len())
            };
            format!("{y}: the gradient of the {out}×{} weights and {out} biases{back}.", l.input.len())
        }
    }
}
