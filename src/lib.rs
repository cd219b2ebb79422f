//! cnn-stepper: train the blog post's convolutional network on MNIST one phase at a time and
//! look at every tensor on the way.
//!
//! The crate is split so that everything but the window builds and tests without egui:
//! - [`data`]: IDX reader, dataset folders, the embedded MNIST sample and seeded batch sampling.
//! - [`engine`]: the network's maths, one layer per file, with a naive and a fast convolution.
//! - [`trainer`]: a synchronous training session and the worker thread that drives it.
//! - `app` and `ui` (feature `gui`): the eframe window.

#[cfg(feature = "gui")]
pub mod app;
pub mod cli;
pub mod data;
pub mod engine;
pub mod trainer;
#[cfg(feature = "gui")]
pub mod ui;
