//! The fixed regions of the window, one file each: the menu bar, the banners, the control bar,
//! the status line, the pipeline (left), outputs and curves (right) and the batch strip above
//! the tabs.

pub mod banner;
pub mod batch;
pub mod controls;
pub mod curves;
pub mod lesson;
pub mod lesson_cards;
pub mod menu;
pub mod outputs;
pub mod pipeline;
pub mod status;
