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

/// Largest mini-batch anything accepts: the window, `train --batch`, `bench --batch` and a
/// session file's settings. One limit, so a file the command line wrote always opens in the
/// window.
pub const MAX_BATCH: usize = 1024;
/// Largest learning rate accepted: beyond it every run of this network diverges at once.
pub const MAX_LR: f32 = 10.0;
/// Largest L2 strength accepted: beyond it the weight penalty outweighs the data loss
/// (ln 10 ≈ 2.3) from the first step and drives the dense weights to zero.
pub const MAX_REG: f32 = 1.0;
/// Most epochs `train --epochs` accepts (60,000 MNIST images each).
pub const MAX_EPOCHS: usize = 10_000;

/// A training setting the user can type, for messages that name it and for a window that
/// points at the field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Setting {
    /// SGD learning rate.
    LearningRate,
    /// Momentum.
    Momentum,
    /// L2 strength.
    Reg,
    /// Per-epoch learning-rate factor.
    LrDecay,
    /// Images per mini-batch.
    BatchSize,
}

impl Setting {
    /// The name messages use, e.g. "learning rate".
    pub fn name(self) -> &'static str {
        match self {
            Setting::LearningRate => "learning rate",
            Setting::Momentum => "momentum",
            Setting::Reg => "reg",
            Setting::LrDecay => "lr decay",
            Setting::BatchSize => "batch size",
        }
    }

    /// The accepted range in words, e.g. "above 0 and at most 10": what `--help`, the command
    /// line's errors and [`Hyper::validate`] all say.
    pub fn range(self) -> String {
        match self {
            Setting::LearningRate => format!("above 0 and at most {MAX_LR}"),
            Setting::Momentum => "at least 0 and below 1".into(),
            Setting::Reg => format!("at least 0 and at most {MAX_REG}"),
            Setting::LrDecay => "above 0 and at most 1".into(),
            Setting::BatchSize => format!("between 1 and {MAX_BATCH}"),
        }
    }

    /// Why `v` is not an acceptable value of this setting, or `None` if it is (a batch size
    /// must also be a whole number).
    pub fn check_f32(self, v: f32) -> Option<String> {
        let ok = v.is_finite()
            && match self {
                Setting::LearningRate => v > 0.0 && v <= MAX_LR,
                Setting::Momentum => (0.0..1.0).contains(&v),
                Setting::Reg => (0.0..=MAX_REG).contains(&v),
                Setting::LrDecay => v > 0.0 && v <= 1.0,
                Setting::BatchSize => v >= 1.0 && v <= MAX_BATCH as f32 && v.fract() == 0.0,
            };
        if ok {
            return None;
        }
        let far_too_large = match self {
            Setting::LearningRate => v > MAX_LR,
            Setting::Reg => v > MAX_REG,
            _ => false,
        };
        Some(if far_too_large && v.is_finite() {
            format!("is far too large: must be {}", self.range())
        } else {
            format!("must be {}", self.range())
        })
    }

    /// Why `v` is not an acceptable batch size, or `None` if it is.
    pub fn check_batch(v: usize) -> Option<String> {
        (v == 0 || v > MAX_BATCH).then(|| format!("must be {}", Setting::BatchSize.range()))
    }
}

impl std::fmt::Display for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One refused value: which setting, the value as given, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct SettingProblem {
    /// The setting.
    pub setting: Setting,
    /// The value that was refused, as text ("0", "NaN", "1e30").
    pub value: String,
    /// Why, e.g. "must be above 0 and at most 10".
    pub reason: String,
}

impl std::fmt::Display for SettingProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} = {}: {}", self.setting, self.value, self.reason)
    }
}

/// Settings that cannot train, with every problem found (not only the first), so that a form
/// can mark all the fields at once.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{}", self.problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct SettingsError {
    /// Each refused value, in the order the settings are listed ([`Setting`]).
    pub problems: Vec<SettingProblem>,
}

impl SettingsError {
    /// `Ok` when there are no problems, else the error holding them all.
    pub fn from_problems(problems: Vec<SettingProblem>) -> Result<(), SettingsError> {
        if problems.is_empty() { Ok(()) } else { Err(SettingsError { problems }) }
    }

    /// True if `setting` is one of the problems.
    pub fn concerns(&self, setting: Setting) -> bool {
        self.problems.iter().any(|p| p.setting == setting)
    }
}

/// A value as a person would type it: `0.01`, `-5`, `1e30` (not thirty zeros).
fn show(v: f32) -> String {
    if v == 0.0 || !v.is_finite() || (1e-4..1e7).contains(&v.abs()) { v.to_string() } else { format!("{v:e}") }
}

/// Which rule the update phase follows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OptimizerKind {
    /// SGD, with [`Hyper::momentum`] (0: the post's plain SGD).
    #[default]
    Sgd,
    /// Adam with PyTorch's constants (β1 0.9, β2 0.999, ε 1e-8); momentum is not used.
    Adam,
}

impl OptimizerKind {
    /// Both, in the order a menu lists them.
    pub const ALL: [OptimizerKind; 2] = [OptimizerKind::Sgd, OptimizerKind::Adam];

    /// The lower-case name used on the command line and in files (`sgd`, `adam`).
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Adam => "adam",
        }
    }

    /// Parses `sgd` or `adam`.
    pub fn parse(s: &str) -> Result<Self, EngineError> {
        match s {
            "sgd" => Ok(OptimizerKind::Sgd),
            "adam" => Ok(OptimizerKind::Adam),
            other => Err(EngineError::Config(format!("unknown optimizer {other:?}: expected \"sgd\" or \"adam\""))),
        }
    }
}

/// Optimiser settings, applied at the next batch.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hyper {
    /// SGD learning rate, above 0 and at most [`MAX_LR`].
    pub lr: f32,
    /// Momentum in [0, 1); 0 is the post's plain SGD.
    pub momentum: f32,
    /// L2 strength, 0 to [`MAX_REG`]: the loss adds 0.5·reg·(ΣW_fc1² + ΣW_fc2²).
    pub reg: f32,
    /// The learning rate is multiplied by this after every [`DECAY_EVERY_IMAGES`] images
    /// trained on (1 = constant), down to [`LR_FLOOR`] times the learning rate.
    pub lr_decay: f32,
    /// SGD (with momentum) or Adam. Files written before Adam existed say nothing: SGD.
    #[serde(default)]
    pub optimizer: OptimizerKind,
}

impl Hyper {
    /// Every value that cannot train (see [`Setting::check_f32`]), in field order.
    pub fn problems(&self) -> Vec<SettingProblem> {
        [
            (Setting::LearningRate, self.lr),
            (Setting::Momentum, self.momentum),
            (Setting::Reg, self.reg),
            (Setting::LrDecay, self.lr_decay),
        ]
        .into_iter()
        .filter_map(|(setting, v)| {
            setting.check_f32(v).map(|reason| SettingProblem { setting, value: show(v), reason })
        })
        .collect()
    }

    /// Refuses values that cannot train (lr outside (0, 10], momentum outside [0, 1), reg
    /// outside [0, 1], lr decay outside (0, 1], NaNs), naming every one.
    pub fn validate(&self) -> Result<(), SettingsError> {
        SettingsError::from_problems(self.problems())
    }

    /// Where the learning rate stands after `images` images trained on (counting the batch
    /// about to train): see [`LrSchedule`].
    pub fn schedule(&self, images: u64) -> LrSchedule {
        let decays = images / DECAY_EVERY_IMAGES;
        // On MNIST's 60,000 training images this is exactly the per-epoch decay of earlier
        // versions (the batch that ends an epoch already trains at the next epoch's rate).
        let decayed = self.lr * self.lr_decay.powi(decays.min(1000) as i32);
        let floor = self.lr * LR_FLOOR;
        let floored = decayed < floor;
        let lr = decayed.max(floor);
        let next_at = (self.lr_decay < 1.0 && !floored).then(|| (decays + 1).saturating_mul(DECAY_EVERY_IMAGES));
        LrSchedule { lr, decays, floored, next_at, images }
    }
}

/// The learning rate is multiplied by [`Hyper::lr_decay`] once per this many training images:
/// one pass over MNIST's training set, whatever set is loaded, so that a demo on the embedded
/// sample (10,000 images) does not stall after a minute, and the full set trains as before.
pub const DECAY_EVERY_IMAGES: u64 = 60_000;

/// The decayed learning rate never goes below this fraction of the learning rate set.
pub const LR_FLOOR: f32 = 0.01;

/// Where the learning rate is in its schedule ([`Hyper::schedule`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LrSchedule {
    /// The learning rate in force: `lr · lr_decay^decays`, at least `lr · LR_FLOOR`.
    pub lr: f32,
    /// Decays applied so far (one per [`DECAY_EVERY_IMAGES`] images).
    pub decays: u64,
    /// True once the rate sits at the floor.
    pub floored: bool,
    /// Images trained on at which the next decay applies (`None`: constant from here on).
    pub next_at: Option<u64>,
    /// The images trained on this is for.
    pub images: u64,
}

/// A named starting point: initialisation plus the hyper-parameters that go with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Preset {
    /// Exactly the post's `Model`: tiny weights, reg 0.05, plain SGD. The loss stays near ln 10.
    Post,
    /// He init with SGD + momentum: what trains this network best here.
    Recommended,
    /// He init with Adam (lr 0.001): the usual first choice in PyTorch tutorials.
    Adam,
}

impl Preset {
    /// The lower-case name used on the command line and in files.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Post => "post",
            Preset::Recommended => "recommended",
            Preset::Adam => "adam",
        }
    }

    /// Every preset, in the order a menu lists them.
    pub const ALL: [Preset; 3] = [Preset::Post, Preset::Recommended, Preset::Adam];

    /// Parses `post` or `recommended`.
    pub fn parse(s: &str) -> Result<Self, EngineError> {
        match s {
            "post" => Ok(Preset::Post),
            "recommended" => Ok(Preset::Recommended),
            "adam" => Ok(Preset::Adam),
            other => Err(EngineError::Config(format!(
                "unknown preset {other:?}: expected \"post\", \"recommended\" or \"adam\""
            ))),
        }
    }

    /// The weight initialisation of this preset.
    pub fn init(self) -> Init {
        match self {
            Preset::Post => Init::Post,
            Preset::Recommended | Preset::Adam => Init::He,
        }
    }

    /// The hyper-parameters of this preset.
    pub fn hyper(self) -> Hyper {
        match self {
            Preset::Post => Hyper { lr: 0.01, momentum: 0.0, reg: 0.05, lr_decay: 1.0, optimizer: OptimizerKind::Sgd },
            Preset::Recommended => {
                Hyper { lr: 0.01, momentum: 0.9, reg: 1e-4, lr_decay: 0.3, optimizer: OptimizerKind::Sgd }
            }
            Preset::Adam => Hyper { lr: 1e-3, momentum: 0.9, reg: 1e-4, lr_decay: 0.3, optimizer: OptimizerKind::Adam },
        }
    }

    /// The mini-batch size of this preset.
    pub fn batch_size(self) -> usize {
        32
    }
}
