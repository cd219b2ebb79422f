//! Shapes, hyper-parameters and presets. Nothing else in the engine hard-codes a size.

use serde::{Deserialize, Serialize};

use super::EngineError;

/// The network's shape: every tensor size is derived from these numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Input channels (1 for MNIST).
    pub in_channels: usize,
    /// Input height in pixels.
    pub in_height: usize,
    /// Input width in pixels.
    pub in_width: usize,
    /// Number of conv1 filters.
    pub conv1_filters: usize,
    /// Number of conv2 filters.
    pub conv2_filters: usize,
    /// Square kernel size of both convolutions.
    pub kernel: usize,
    /// Stride of both convolutions.
    pub stride: usize,
    /// Zero padding on every side, both convolutions.
    pub pad: usize,
    /// Hidden units of FC1.
    pub hidden: usize,
    /// Number of classes (FC2's outputs).
    pub classes: usize,
    /// Put a ReLU after conv2 (the post has none; on for the lesson on non-linearities).
    pub relu_after_conv2: bool,
}

impl Default for ModelConfig {
    /// The post's network for 28×28 MNIST digits.
    fn default() -> Self {
        Self {
            in_channels: 1,
            in_height: 28,
            in_width: 28,
            conv1_filters: 16,
            conv2_filters: 32,
            kernel: 5,
            stride: 1,
            pad: 2,
            hidden: 100,
            classes: 10,
            relu_after_conv2: false,
        }
    }
}

impl ModelConfig {
    /// Output height and width of a convolution over an `h`×`w` input.
    fn conv_out(&self, h: usize, w: usize) -> (usize, usize) {
        let oh = (h + 2 * self.pad - self.kernel) / self.stride + 1;
        let ow = (w + 2 * self.pad - self.kernel) / self.stride + 1;
        (oh, ow)
    }

    /// Height and width of conv1's output maps.
    pub fn conv1_out(&self) -> (usize, usize) {
        self.conv_out(self.in_height, self.in_width)
    }

    /// Height and width of conv2's output maps.
    pub fn conv2_out(&self) -> (usize, usize) {
        let (h, w) = self.conv1_out();
        self.conv_out(h, w)
    }

    /// Length of the flattened conv2 output, FC1's input (25,088 for the post).
    pub fn flat_len(&self) -> usize {
        let (h, w) = self.conv2_out();
        self.conv2_filters * h * w
    }

    /// Checks that every size is positive and the kernels fit the padded input.
    pub fn validate(&self) -> Result<(), EngineError> {
        let named = [
            ("in_channels", self.in_channels),
            ("in_height", self.in_height),
            ("in_width", self.in_width),
            ("conv1_filters", self.conv1_filters),
            ("conv2_filters", self.conv2_filters),
            ("kernel", self.kernel),
            ("stride", self.stride),
            ("hidden", self.hidden),
            ("classes", self.classes),
        ];
        for (name, v) in named {
            if v == 0 {
                return Err(EngineError::Config(format!("{name} must be at least 1")));
            }
        }
        // Bounds first, so the size arithmetic below cannot overflow.
        for (name, v) in named.into_iter().chain([("pad", self.pad)]) {
            if v > 1 << 16 {
                return Err(EngineError::Config(format!("{name} = {v} is absurdly large")));
            }
        }
        if self.classes < 2 {
            return Err(EngineError::Config("classes must be at least 2".into()));
        }
        let fits = |h: usize, w: usize| h + 2 * self.pad >= self.kernel && w + 2 * self.pad >= self.kernel;
        if !fits(self.in_height, self.in_width) {
            return Err(EngineError::Config(format!(
                "a {k}×{k} kernel does not fit a {}×{} input with padding {}",
                self.in_height,
                self.in_width,
                self.pad,
                k = self.kernel
            )));
        }
        let (h1, w1) = self.conv1_out();
        if !fits(h1, w1) {
            return Err(EngineError::Config(format!(
                "a {k}×{k} kernel does not fit conv1's {h1}×{w1} output with padding {}",
                self.pad,
                k = self.kernel
            )));
        }
        Ok(())
    }
}

/// How the weights are drawn at the start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Init {
    /// The post's `Model`: every weight normal with std 1e-4, biases zero. Signals vanish.
    Post,
    /// He/Kaiming: normal with std √(2 / fan-in), biases zero. Keeps ReLU signals at scale.
    He,
}

/// Optimiser settings, applied at the next batch.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hyper {
    /// SGD learning rate (> 0).
    pub lr: f32,
    /// Momentum in [0, 1); 0 is the post's plain SGD.
    pub momentum: f32,
    /// L2 strength: the loss adds 0.5·reg·(ΣW_fc1² + ΣW_fc2²).
    pub reg: f32,
    /// The learning rate is multiplied by this after each epoch (1 = constant).
    pub lr_decay: f32,
}

impl Hyper {
    /// Refuses values that cannot train: lr ≤ 0, momentum outside [0, 1), reg < 0, NaNs.
    pub fn validate(&self) -> Result<(), EngineError> {
        let bad = |what: &str, v: f32, why: &str| Err(EngineError::Hyper(format!("{what} = {v}: {why}")));
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("learning rate", self.lr, "must be a number above 0");
        }
        if self.lr > 10.0 {
            return bad("learning rate", self.lr, "is far too large (at most 10)");
        }
        if !(self.momentum.is_finite() && (0.0..1.0).contains(&self.momentum)) {
            return bad("momentum", self.momentum, "must be at least 0 and below 1");
        }
        if !(self.reg.is_finite() && self.reg >= 0.0) {
            return bad("reg", self.reg, "must be 0 or more");
        }
        if !(self.lr_decay.is_finite() && self.lr_decay > 0.0 && self.lr_decay <= 1.0) {
            return bad("lr decay", self.lr_decay, "must be above 0 and at most 1");
        }
        Ok(())
    }

    /// The learning rate in effect during epoch `epoch` (0-based).
    pub fn lr_at_epoch(&self, epoch: usize) -> f32 {
        self.lr * self.lr_decay.powi(epoch.min(1000) as i32)
    }
}

/// A named starting point: initialisation plus the hyper-parameters that go with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Preset {
    /// Exactly the post's `Model`: tiny weights, reg 0.05, plain SGD. The loss stays near ln 10.
    Post,
    /// He init with SGD + momentum: what trains this network best here.
    Recommended,
}

impl Preset {
    /// The lower-case name used on the command line and in files.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Post => "post",
            Preset::Recommended => "recommended",
        }
    }

    /// Parses `post` or `recommended`.
    pub fn parse(s: &str) -> Result<Self, EngineError> {
        match s {
            "post" => Ok(Preset::Post),
            "recommended" => Ok(Preset::Recommended),
            other => {
                Err(EngineError::Config(format!("unknown preset {other:?}: expected \"post\" or \"recommended\"")))
            }
        }
    }

    /// The weight initialisation of this preset.
    pub fn init(self) -> Init {
        match self {
            Preset::Post => Init::Post,
            Preset::Recommended => Init::He,
        }
    }

    /// The hyper-parameters of this preset.
    pub fn hyper(self) -> Hyper {
        match self {
            Preset::Post => Hyper { lr: 0.01, momentum: 0.0, reg: 0.05, lr_decay: 1.0 },
            Preset::Recommended => Hyper { lr: 0.01, momentum: 0.9, reg: 1e-4, lr_decay: 0.3 },
        }
    }

    /// The mini-batch size of this preset.
    pub fn batch_size(self) -> usize {
        32
    }
}
