//! The window's parts, grouped by what they are:
//!
//! - [`panels`]: the fixed regions around the central area (menu bar, banners, controls,
//!   pipeline, outputs and curves, status line) and the batch strip above the tabs.
//! - [`tabs`]: the views of the central area, one file each, listed once in
//!   [`tabs::all_tabs`] (the tab row, the 1–5 keys, the remembered tab and the PNG export
//!   targets all follow that list).
//! - [`windows`]: what floats over the others (pixel inspector, draw a digit, help, file
//!   dialog).
//! - [`support`]: what serves them all (colour maps, textures and the scene built from a
//!   snapshot, text, palette, small widgets, preferences, PNG export).
//!
//! Every panel, tab and window draws from the state it is given and returns the commands the
//! user asked for; only the app sends them to the worker. What the user chose to look at is
//! [`ViewState`].

pub mod panels;
pub mod support;
pub mod tabs;
pub mod view;
pub mod windows;

pub use view::{FilterMode, MapMode, ScaleMode, ViewState};
