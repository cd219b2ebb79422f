//! The ordered phases of one training step: what the app steps through.

use serde::{Deserialize, Serialize};

use super::ModelConfig;

/// One layer of the network, as the forward and backward passes visit it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Layer {
    /// First convolution (1 → 16 channels).
    Conv1,
    /// ReLU after conv1.
    Relu1,
    /// Second convolution (16 → 32 channels).
    Conv2,
    /// Optional ReLU after conv2 (not in the post).
    ReluConv2,
    /// Flatten + first dense layer (25,088 → 100).
    Fc1,
    /// ReLU after FC1.
    Relu2,
    /// Second dense layer (100 → 10 class scores).
    Fc2,
    /// Softmax cross-entropy averaged over the batch, plus L2 on the dense weights.
    Loss,
}

impl Layer {
    /// All layers in forward order (the optional ReLU included).
    pub const ALL: [Layer; 8] =
        [Layer::Conv1, Layer::Relu1, Layer::Conv2, Layer::ReluConv2, Layer::Fc1, Layer::Relu2, Layer::Fc2, Layer::Loss];

    /// Short name, as in the post's code.
    pub fn name(self) -> &'static str {
        match self {
            Layer::Conv1 => "conv1",
            Layer::Relu1 => "relu1",
            Layer::Conv2 => "conv2",
            Layer::ReluConv2 => "relu_c2",
            Layer::Fc1 => "fc1",
            Layer::Relu2 => "relu2",
            Layer::Fc2 => "fc2",
            Layer::Loss => "loss",
        }
    }
}

/// One step of the training loop: a layer's forward or backward computation, or the update.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Phase {
    /// Compute a layer's output from its input.
    Forward(Layer),
    /// Compute the gradients of a layer's parameters and of its input from its output gradient.
    Backward(Layer),
    /// Apply SGD (with momentum) to every parameter.
    Update,
}

impl Phase {
    /// Every phase of one training step for `cfg`, in order: forward, backward (reverse), update.
    pub fn sequence(cfg: &ModelConfig) -> Vec<Phase> {
        let layers: Vec<Layer> =
            Layer::ALL.into_iter().filter(|l| *l != Layer::ReluConv2 || cfg.relu_after_conv2).collect();
        let mut phases: Vec<Phase> = layers.iter().map(|l| Phase::Forward(*l)).collect();
        phases.extend(layers.iter().rev().map(|l| Phase::Backward(*l)));
        phases.push(Phase::Update);
        phases
    }

    /// A label such as `forward conv2` or `update`.
    pub fn label(self) -> String {
        match self {
            Phase::Forward(l) => format!("forward {}", l.name()),
            Phase::Backward(l) => format!("backward {}", l.name()),
            Phase::Update => "update".to_string(),
        }
    }

    /// True for the backward phases.
    pub fn is_backward(self) -> bool {
        matches!(self, Phase::Backward(_))
    }

    /// One line on what the phase computes, as a formula.
    pub fn formula(self) -> &'static str {
        use Layer::*;
        match self {
            Phase::Forward(Conv1) => "a1[n,f] = b1[f] + Σc,i,j x[n,c,·+i,·+j]·W1[f,c,i,j]",
            Phase::Forward(Relu1) => "h1 = max(0, a1)",
            Phase::Forward(Conv2) => "a2[n,f] = b2[f] + Σc,i,j h1[n,c,·+i,·+j]·W2[f,c,i,j]",
            Phase::Forward(ReluConv2) => "h2 = max(0, a2)",
            Phase::Forward(Fc1) => "z1 = flatten(a2)·W3ᵀ + b3",
            Phase::Forward(Relu2) => "h3 = max(0, z1)",
            Phase::Forward(Fc2) => "scores = h3·W4ᵀ + b4",
            Phase::Forward(Loss) => "p = softmax(scores); L = −mean log p[y] + ½·reg·(ΣW3² + ΣW4²)",
            Phase::Backward(Loss) => "dscores = (p − onehot(y)) / N",
            Phase::Backward(Fc2) => "dW4 = dscoresᵀ·h3 + reg·W4; db4 = Σ dscores; dh3 = dscores·W4",
            Phase::Backward(Relu2) => "dz1 = dh3 ⊙ [z1 > 0]",
            Phase::Backward(Fc1) => "dW3 = dz1ᵀ·flatten(a2) + reg·W3; db3 = Σ dz1; da2 = dz1·W3",
            Phase::Backward(ReluConv2) => "da2 = dh2 ⊙ [a2 > 0]",
            Phase::Backward(Conv2) => "dW2 = Σ da2 ⋆ h1; db2 = Σ da2; dh1 = da2 ⋆ W2 (full conv)",
            Phase::Backward(Relu1) => "da1 = dh1 ⊙ [a1 > 0]",
            Phase::Backward(Conv1) => "dW1 = Σ da1 ⋆ x; db1 = Σ da1",
            Phase::Update => "v = μ·v − lr·dW; W = W + v (every parameter)",
        }
    }

    /// One sentence on what the phase does, for a student who read the post.
    pub fn description(self) -> &'static str {
        use Layer::*;
        match self {
            Phase::Forward(Conv1) => "Slide 16 5×5 filters over the padded digit: 16 feature maps.",
            Phase::Forward(Relu1) => "Zero every negative value of conv1's maps.",
            Phase::Forward(Conv2) => "Each of 32 filters looks at all 16 maps through a 5×5 window.",
            Phase::Forward(ReluConv2) => "Zero every negative value of conv2's maps (not in the post).",
            Phase::Forward(Fc1) => "Flatten the 32 maps into one long vector; 100 weighted sums of it.",
            Phase::Forward(Relu2) => "Zero the negative hidden units.",
            Phase::Forward(Fc2) => "Ten weighted sums of the hidden units: one score per class.",
            Phase::Forward(Loss) => "Turn scores into probabilities; penalise low probability on the true class.",
            Phase::Backward(Loss) => "Gradient of the loss w.r.t. the scores: probability minus one-hot label.",
            Phase::Backward(Fc2) => "How FC2's weights and the hidden units should change.",
            Phase::Backward(Relu2) => "Gradients pass only through hidden units that were positive.",
            Phase::Backward(Fc1) => "FC1's weight gradient, and the gradient for every conv2 pixel.",
            Phase::Backward(ReluConv2) => "Gradients pass only through conv2 pixels that were positive.",
            Phase::Backward(Conv2) => "Each conv2 filter's gradient, and the gradient sent back to conv1's maps.",
            Phase::Backward(Relu1) => "Gradients pass only through conv1 pixels that were positive.",
            Phase::Backward(Conv1) => {
                "Each conv1 filter's gradient: the digit patches weighted by their pixel gradients."
            }
            Phase::Update => "Every weight takes a small step against its gradient.",
        }
    }
}
