//! Any small CNN: a network written as a list of layers, one to one with a PyTorch
//! `nn.Sequential`, and trained one phase at a time.
//!
//! - [`spec`]: the line `conv(16,5,pad=2), relu, …, fc(10)` ([`ModelSpec::parse`], `Display`).
//! - [`shape`]: the line checked against the data ([`ModelSpec::plan`] → [`Plan`]): shapes,
//!   student names (conv1, relu1, pool1, …), parameters and work per layer.
//! - [`named`](mod@named): `post`, `post-relu`, `lenet5`, `tiny`, and [`resolve`] (a name or a line → plan).
//! - [`layers`]: one file per layer kind, forward and backward side by side.
//! - [`sequential`]: [`Sequential`], the network with its phases; [`optim`]: SGD and Adam;
//!   [`text`]: each phase's formula and sentence.
//! - [`gradcheck`]: backprop against finite differences, for any network; [`evidence`]: the
//!   exact class evidence of the maps flatten takes, and one unit of the first fc.
//! - [`loops`]: a phase's loop nest in the post's notation, stepped one iteration at a time on
//!   a batch's real tensors ([`loops::LoopCase`], [`loops::LoopCursor`]).
//!
//! The trainer, the command line and the window run every network through [`Sequential`]; the
//! post's fixed [`Network`](crate::engine::Network) stays as the reference it reproduces bit
//! for bit on `post`.

pub mod evidence;
pub mod gradcheck;
pub mod layers;
pub mod loops;
pub mod named;
pub mod optim;
pub mod sequential;
pub mod shape;
pub mod spec;
pub mod text;

pub use named::{DEFAULT_MODEL, NAMED, NamedModel, name_of, named, resolve};
pub use optim::Optimizer;
pub use sequential::{ParamTensor, Phase, SeqState, Sequential, Tensors};
pub use shape::{Plan, PlannedLayer, Shape};
pub use spec::{LayerSpec, ModelSpec, SpecError};
