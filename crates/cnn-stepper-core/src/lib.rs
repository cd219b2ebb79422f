//! cnn-stepper's headless core: train the blog post's convolutional network on MNIST one phase
//! at a time and look at every tensor on the way, without a window.
//!
//! - [`data`]: IDX reader, dataset folders, the embedded MNIST sample and seeded batch sampling.
//! - [`engine`]: the network's maths, one layer per file, with a naive and a fast convolution.
//! - [`trainer`]: a synchronous training session and the worker thread that drives it.
//! - [`cli`]: the headless commands (`train`, `eval`, `bench`, `export`).
//! - [`fileio`]: opening only regular files, atomic saves, and checking a save path early.
//!
//! Nothing here depends on egui; the window is the `cnn-stepper` crate.

pub mod cli;
pub mod data;
pub mod engine;
pub mod fileio;
pub mod lessons;
pub mod trainer;
