//! cnn-stepper's window: the eframe app that steps through a training step of a real CNN.
//!
//! The maths, data and trainer live in [`cnn_stepper_core`], re-exported here so the window's
//! code and tests name them as `crate::engine`, `crate::trainer`, …
//! - `app`: the eframe `App` (state, per-frame logic, drawing, commands).
//! - `ui`: panels, tabs and windows, and what serves them (colour maps, textures, dialogs).

pub use cnn_stepper_core::{cli, data, engine, fileio, lessons, trainer};

pub mod app;
pub mod ui;
