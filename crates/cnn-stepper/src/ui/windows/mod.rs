//! What floats over the panels: the pixel inspector, the draw-a-digit canvas, the help (and the
//! explanations every panel offers), the list of keys, the file dialog, the Network editor,
//! Open data, and the convolution playground.

pub mod draw;
pub mod file_dialog;
pub mod help;
pub mod inspector;
pub mod keys;
pub mod network;
pub mod open_data;
pub mod playground;
